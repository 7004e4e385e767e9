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
 * model): the case the targets are about.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
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
import { fmt } from "./stats.js"

const ROUNDS = 3
const ROUND_SECONDS = 4

interface Row {
  readonly store: string
  readonly load: string
  readonly direct: Figures
  readonly proxied: Figures
}

const measure = async (
  store: string,
  databaseUrl: string,
  latencyMs: number,
  dir: string,
  connections = CONNECTIONS
): Promise<Row> => {
  const upstream = await startChild(
    ["bench/proxyUpstream.ts"],
    { LATENCY_MS: String(latencyMs) },
    /^READY (\d+)$/
  )
  const upstreamUrl = `http://127.0.0.1:${upstream.match[1]}`
  const configPath = writeProxyConfig(dir, `${store}-${latencyMs}`, {
    upstreamUrl,
    databaseUrl,
    masterKey: MASTER_KEY
  })
  let proxy: Started | undefined
  try {
    proxy = await startProxy(configPath)
    const proxyUrl = proxy.match[1] ?? ""
    await post(`${proxyUrl}/team/new`, MASTER_KEY, {
      team_id: "bench",
      team_alias: "bench",
      max_budget: 1_000_000
    })
    const key = String((await post(`${proxyUrl}/key/generate`, MASTER_KEY, { team_id: "bench" }))["key"])
    const direct = `${upstreamUrl}/v1/chat/completions`
    const proxied = `${proxyUrl}/v1/chat/completions`
    await load(direct, key, BODY, 2, connections)
    await load(proxied, key, BODY, 2, connections)
    const directRounds: Array<Figures> = []
    const proxiedRounds: Array<Figures> = []
    for (let round = 0; round < ROUNDS; round++) {
      directRounds.push(await load(direct, key, BODY, ROUND_SECONDS, connections))
      proxiedRounds.push(await load(proxied, key, BODY, ROUND_SECONDS, connections))
    }
    return {
      store,
      load: `${latencyMs === 0 ? "instant" : `${latencyMs} ms`} provider, ${connections} conn.`,
      direct: mean(directRounds),
      proxied: mean(proxiedRounds)
    }
  } finally {
    if (proxy !== undefined) await stop(proxy.child)
    await stop(upstream.child)
  }
}

export const run = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "tb-bench-proxy-"))
  const rows: Array<Row> = []
  const notes: Array<string> = []
  try {
    const pg = await pgReachable()
    if (!pg) notes.push("PostgreSQL was not reachable at 127.0.0.1:5432: its rows are missing.")
    for (const latencyMs of [0, 25]) {
      rows.push(await measure("memory", "memory:", latencyMs, dir))
      rows.push(await measure("SQLite", `sqlite:${join(dir, `bench-${latencyMs}.db`)}`, latencyMs, dir))
      if (pg) rows.push(await withFreshDatabase((url) => measure("PostgreSQL", url, latencyMs, dir)))
    }
    rows.push(await measure("memory", "memory:", 0, dir, 1))
    rows.push(await measure("SQLite", `sqlite:${join(dir, "bench-1.db")}`, 0, dir, 1))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return [
    "### Proxy: direct calls to a provider versus the same calls through `npm start`",
    "",
    `${CONNECTIONS} connections (and 1, for latency without queueing), autocannon; the provider, the proxy and the load generator in separate ` +
      `processes; mean of ${ROUNDS} alternating ${ROUND_SECONDS} s rounds after a warm-up. Every proxied ` +
      "call is authorised, held on its key and team, forwarded, settled from its usage and logged.",
    "",
    "| store | load | direct req/s | proxied req/s | proxied / direct | direct p50 / p99 ms | proxied p50 / p99 ms | added p50 / p99 ms | errors |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      ({ store, load, direct, proxied }) =>
        `| ${store} | ${load} | ${fmt(direct.rps, 0)} | ${fmt(proxied.rps, 0)} | ` +
        `**${fmt(proxied.rps / direct.rps, 3)}** | ${fmt(direct.p50, 1)} / ${fmt(direct.p99, 1)} | ` +
        `${fmt(proxied.p50, 1)} / ${fmt(proxied.p99, 1)} | ` +
        `**${fmt(proxied.p50 - direct.p50, 1)}** / ${fmt(proxied.p99 - direct.p99, 1)} | ` +
        `${direct.errors + proxied.errors} |`
    ),
    "",
    "Targets: under 1 ms added at p50 and over 80% of direct throughput on memory and SQLite. With an " +
      "instant provider the direct side is a server doing nothing, so the ratio is the proxy's whole " +
      "per-request cost on one core, and at 64 connections the added latency is mostly queueing behind " +
      "that core. The rows with one connection send one request at a time: nothing queues, so their " +
      "added p50 is the proxy's own work per request.",
    ...notes.map((note) => `\n${note}`),
    ""
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await run())
