/**
 * The proxy example's cost: the same chat completion calls sent straight to a fake
 * provider and sent through the proxy (`examples/proxy/main.ts --config`, with a key
 * whose team has a budget), in one run, 64 connections, autocannon. The provider, the
 * proxy and the load generator are three processes; direct and proxied rounds
 * alternate so drift hits both alike. Once per store: memory, SQLite, PostgreSQL.
 *
 * The provider answers at once: everything the proxy adds (authorise, hold, forward,
 * meter, settle, log a line) is the whole difference, the worst case for the ratio.
 * Then, on every store, a provider that takes 25 ms (still far faster than a real
 * model): the case the targets are about. Under each provider, a reference row puts
 * `bench/minimalForwarder.ts` (parse, forward, answer; no budget) where the proxy was,
 * to show what any Node proxy reaches on the same machine under the same load. The
 * 25 ms provider again at half the connections shows the added latency where the proxy
 * is not saturated, whatever the machine.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import {
  BODY,
  CONNECTIONS,
  MASTER_KEY,
  pgReachable,
  post,
  type Started,
  startChild,
  startProxy,
  stop,
  withFreshDatabase,
  writeProxyConfig
} from "./processes.js"
import { type Figures, load, mean } from "./load.js"
import { cpuMillis } from "./processCpu.js"
import { fmt, percentile } from "./stats.js"

const ROUNDS = 3
/** The row of the forwarder with no budget, the ceiling of any Node proxy on the machine. */
const REFERENCE = "reference: minimal forwarder, no budget"
const ROUND_SECONDS = 4

interface Row {
  readonly store: string
  readonly load: string
  readonly direct: Figures
  readonly proxied: Figures
  /** CPU of the process in front of the provider per proxied request, in microseconds. */
  readonly cpuMicros: number | undefined
  /** The proxy's own time per request, from its log (`latency_ms - upstream_ms`), sorted; empty for the reference. */
  readonly own: ReadonlyArray<number>
}

/** A server under test in front of the provider at `upstreamUrl`: its LLM route, a key for it, and how to stop it. */
interface Front {
  readonly url: string
  readonly key: string
  readonly pid: number | undefined
  readonly stop: () => Promise<void>
  /** The own time of each answered request logged since the last call, in ms (none for the reference). */
  readonly ownTimes: () => ReadonlyArray<number>
}

/** A proxy log line's own time: the request's latency less the provider's part, for a 200. */
const ownTime = (line: string): number | undefined => {
  if (!line.startsWith("{")) return undefined
  const record: unknown = JSON.parse(line)
  if (typeof record !== "object" || record === null) return undefined
  const latency: unknown = Reflect.get(record, "latency_ms")
  const upstream: unknown = Reflect.get(record, "upstream_ms")
  return Reflect.get(record, "status") === 200 && typeof latency === "number" && typeof upstream === "number"
    ? latency - upstream
    : undefined
}

/** The proxy example on the store at `databaseUrl`, with a team budget and a key on it. */
const proxyFront =
  (databaseUrl: string, dir: string, name: string) =>
  async (upstreamUrl: string): Promise<Front> => {
    const configPath = writeProxyConfig(dir, name, { upstreamUrl, databaseUrl, masterKey: MASTER_KEY })
    const proxy: Started = await startProxy(configPath)
    const proxyUrl = proxy.match[1] ?? ""
    const own: Array<number> = []
    if (proxy.child.stdout !== null)
      createInterface({ input: proxy.child.stdout }).on("line", (line) => {
        const time = ownTime(line)
        if (time !== undefined) own.push(time)
      })
    try {
      await post(`${proxyUrl}/team/new`, MASTER_KEY, {
        team_id: "bench",
        team_alias: "bench",
        max_budget: 1_000_000
      })
      const key = String((await post(`${proxyUrl}/key/generate`, MASTER_KEY, { team_id: "bench" }))["key"])
      return {
        url: `${proxyUrl}/v1/chat/completions`,
        key,
        pid: proxy.child.pid,
        stop: () => stop(proxy.child),
        ownTimes: () => own.splice(0)
      }
    } catch (error) {
      await stop(proxy.child)
      throw error
    }
  }

/** The reference: a forwarder with no budget (`bench/minimalForwarder.ts`). */
const minimalFront = async (upstreamUrl: string): Promise<Front> => {
  const forwarder = await startChild(
    ["bench/minimalForwarder.ts"],
    { UPSTREAM_URL: upstreamUrl },
    /^READY (\d+)$/
  )
  return {
    url: `http://127.0.0.1:${forwarder.match[1]}/v1/chat/completions`,
    key: "none",
    pid: forwarder.child.pid,
    stop: () => stop(forwarder.child),
    ownTimes: () => []
  }
}

const measure = async (
  store: string,
  front: (upstreamUrl: string) => Promise<Front>,
  latencyMs: number,
  connections = CONNECTIONS
): Promise<Row> => {
  const upstream = await startChild(
    ["bench/proxyUpstream.ts"],
    { LATENCY_MS: String(latencyMs) },
    /^READY (\d+)$/
  )
  const upstreamUrl = `http://127.0.0.1:${upstream.match[1]}`
  let started: Front | undefined
  try {
    started = await front(upstreamUrl)
    const { url: proxied, key, pid, ownTimes } = started
    const direct = `${upstreamUrl}/v1/chat/completions`
    await load(direct, key, BODY, 2, connections)
    await load(proxied, key, BODY, 2, connections)
    const directRounds: Array<Figures> = []
    const proxiedRounds: Array<Figures> = []
    let cpu: number | undefined = 0
    const own: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      directRounds.push(await load(direct, key, BODY, ROUND_SECONDS, connections))
      ownTimes()
      const before = cpuMillis(pid)
      proxiedRounds.push(await load(proxied, key, BODY, ROUND_SECONDS, connections))
      const after = cpuMillis(pid)
      // The last lines of the round are written at the end of the proxy's turn.
      await new Promise((resolve) => setTimeout(resolve, 50))
      own.push(...ownTimes())
      cpu =
        cpu === undefined || before === undefined || after === undefined ? undefined : cpu + after - before
    }
    const served = proxiedRounds.reduce((sum, round) => sum + round.rps * ROUND_SECONDS, 0)
    return {
      store,
      load: `${latencyMs === 0 ? "instant" : `${latencyMs} ms`} provider, ${connections} conn.`,
      direct: mean(directRounds),
      proxied: mean(proxiedRounds),
      cpuMicros: cpu === undefined || served === 0 ? undefined : (cpu * 1000) / served,
      own: own.sort((a, b) => a - b)
    }
  } finally {
    if (started !== undefined) await started.stop()
    await stop(upstream.child)
  }
}

/** Each proxy row's throughput and CPU per request over the reference row's under the same load. */
const againstReference = (rows: ReadonlyArray<Row>): ReadonlyArray<string> =>
  rows.flatMap((row) => {
    const reference = rows.find((other) => other.store === REFERENCE && other.load === row.load)
    if (row.store === REFERENCE || reference === undefined) return []
    const cpu =
      row.cpuMicros === undefined || reference.cpuMicros === undefined || reference.cpuMicros === 0
        ? ""
        : `, CPU per request ${fmt(row.cpuMicros / reference.cpuMicros, 2)}× the reference's`
    return [
      `- ${row.store}, ${row.load}: throughput **${fmt(row.proxied.rps / reference.proxied.rps, 3)}**${cpu}`
    ]
  })

export const run = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "tb-bench-proxy-"))
  const rows: Array<Row> = []
  const notes: Array<string> = []
  try {
    const pg = await pgReachable()
    if (!pg) notes.push("PostgreSQL was not reachable at 127.0.0.1:5432: its rows are missing.")
    const sqlite = (name: string) =>
      proxyFront(`sqlite:${join(dir, `bench-${name}.db`)}`, dir, `sqlite-${name}`)
    for (const latencyMs of [0, 25]) {
      rows.push(await measure("memory", proxyFront("memory:", dir, `memory-${latencyMs}`), latencyMs))
      rows.push(await measure("SQLite", sqlite(String(latencyMs)), latencyMs))
      if (pg)
        rows.push(
          await withFreshDatabase((url) =>
            measure("PostgreSQL", proxyFront(url, dir, `pg-${latencyMs}`), latencyMs)
          )
        )
      rows.push(await measure(REFERENCE, minimalFront, latencyMs))
    }
    // Half the load: where a slower machine's proxy, saturated at 64 connections, has CPU to spare.
    const half = CONNECTIONS / 2
    rows.push(await measure("memory", proxyFront("memory:", dir, "memory-half"), 25, half))
    rows.push(await measure("SQLite", sqlite("half"), 25, half))
    rows.push(await measure(REFERENCE, minimalFront, 25, half))
    rows.push(await measure("memory", proxyFront("memory:", dir, "memory-1"), 0, 1))
    rows.push(await measure("SQLite", sqlite("1"), 0, 1))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return [
    "### Proxy: direct calls to a provider versus the same calls through `npm start`",
    "",
    `${CONNECTIONS} connections (and ${CONNECTIONS / 2}, half the load; and 1, for latency without queueing), autocannon; the provider, the proxy and the load generator in separate ` +
      `processes; mean of ${ROUNDS} alternating ${ROUND_SECONDS} s rounds after a warm-up. Every proxied ` +
      "call is authorised, held on its key and team, forwarded, settled from its usage and logged.",
    "",
    "| store | load | direct req/s | proxied req/s | proxied / direct | direct p50 / p99 ms | proxied p50 / p99 ms | added p50 / p99 ms | proxy's own time p50 / p99 ms | CPU µs / proxied request | errors |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      ({ store, load, direct, proxied, cpuMicros, own }) =>
        `| ${store} | ${load} | ${fmt(direct.rps, 0)} | ${fmt(proxied.rps, 0)} | ` +
        `**${fmt(proxied.rps / direct.rps, 3)}** | ${fmt(direct.p50, 1)} / ${fmt(direct.p99, 1)} | ` +
        `${fmt(proxied.p50, 1)} / ${fmt(proxied.p99, 1)} | ` +
        `**${fmt(proxied.p50 - direct.p50, 1)}** / ${fmt(proxied.p99 - direct.p99, 1)} | ` +
        `${own.length === 0 ? "n/a" : `${fmt(percentile(own, 50), 2)} / ${fmt(percentile(own, 99), 2)}`} | ` +
        `${cpuMicros === undefined ? "n/a" : fmt(cpuMicros, 0)} | ` +
        `${direct.errors + proxied.errors} |`
    ),
    "",
    "Targets: under 1 ms added at p50 and over 80% of direct throughput on memory and SQLite. With an " +
      "instant provider the direct side is a server doing nothing, so the ratio is the proxy's whole " +
      "per-request cost on one core, and at 64 connections the added latency is mostly queueing behind " +
      "that core. The rows with one connection send one request at a time: nothing queues, so their " +
      "added p50 is the proxy's own work per request. The proxy's own time is what its log says of each " +
      "answered request: `latency_ms` (from Node's `request` event to the response's end) less `upstream_ms` " +
      "(from the call to the provider to its answer's headers), over the proxied rounds. What the client sees " +
      "added beyond it is mostly waiting for the CPU: a request read or a provider's answer parsed only once " +
      "the event loop has finished other requests' work. CPU per proxied request is the CPU time (all threads, " +
      "from `/proc`) of the process in front of the provider during the proxied rounds, over the requests it " +
      "served: unlike req/s, it depends little on what else the machine runs.",
    "",
    `The reference rows (${REFERENCE}) are a forwarder that only parses, forwards and answers ` +
      "(`bench/minimalForwarder.ts`): what any in-process Node proxy reaches on this machine under the same load. " +
      "The proxy against it, same load:",
    "",
    ...againstReference(rows),
    ...notes.map((note) => `\n${note}`),
    ""
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await run())
