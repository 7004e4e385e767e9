/**
 * One JSON line per request on stdout: who called (key alias, public key id, user,
 * team), which model, tokens, cost, status and latency: the whole request's
 * (`latency_ms`) and the provider's up to its answer's headers (`upstream_ms`), so
 * their difference is the proxy's own time for an answer that is not streamed. The
 * path is logged without its query string (`/key/info?key=...` may carry a key), and
 * nothing else a client sends is copied, so no secret can reach the log.
 */
import { DateTime, Option } from "effect"
import { Money, VirtualKey } from "../../src/index.js"
import type { RequestRecord } from "./tracking.js"

const orNull = <A>(option: Option.Option<A>): A | null => Option.getOrNull(option)

const hundredths = (ms: number): number => Math.round(ms * 100) / 100

/** The log line of a finished request. */
export const line = (record: RequestRecord, status: number, latencyMs: number): string => {
  const principal = record.principal
  const key = Option.map(principal, (p) => p.key)
  return JSON.stringify({
    time: DateTime.formatIso(DateTime.unsafeNow()),
    level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
    msg: "request",
    method: record.method,
    path: record.path,
    status,
    latency_ms: hundredths(latencyMs),
    upstream_ms: orNull(Option.map(record.upstreamMs, hundredths)),
    key_alias: orNull(Option.flatMap(key, (k) => k.keyAlias)),
    key_name: orNull(Option.map(key, VirtualKey.label)),
    token_id: orNull(Option.map(key, (k) => k.keyId)),
    user_id: orNull(Option.flatMap(key, (k) => k.userId)),
    team_id: orNull(Option.flatMap(key, (k) => k.teamId)),
    model: orNull(record.model),
    prompt_tokens: orNull(Option.map(record.usage, (u) => u.promptTokens)),
    completion_tokens: orNull(Option.map(record.usage, (u) => u.completionTokens)),
    cost_usd: orNull(Option.map(record.cost, Money.toUsd)),
    spend: orNull(record.spend),
    error: orNull(record.error)
  })
}

// Lines are written together once per turn of the event loop: one write per batch,
// not one system call per request.
let batch: Array<string> = []

/** Writes everything queued so far. */
export const flush = (): void => {
  if (batch.length === 0) return
  const text = `${batch.join("\n")}\n`
  batch = []
  process.stdout.write(text)
}

/** Queues a line for stdout. */
export const write = (text: string): void => {
  if (batch.push(text) === 1) setImmediate(flush)
}
