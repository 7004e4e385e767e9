/**
 * Scaling of the proxy on PostgreSQL, in one run:
 * - 1, 2 and 3 proxy instances (`examples/proxy/main.ts`, each its own process) on one
 *   database, all spending from one team budget, loaded together: one autocannon per
 *   instance at the same time, the 64 connections split evenly between them;
 * - 1, 10, 100 and 1,000 teams on one instance, one key per team, each request on the
 *   next key in turn: one hot team row against many cold ones.
 * The provider answers at once (`bench/proxyUpstream.ts`), so the proxies and the
 * database are the whole cost. Throughput is summed over the instances; p50 and p99 are
 * the highest of the instances' own. The machine is shared: the setups alternate in
 * rounds and the load average is printed with the table.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import * as Processes from "./processes.js"
import * as Load from "./load.js"
import { fmt } from "./stats.js"

const { BODY, CONNECTIONS, MASTER_KEY, post } = Processes
const WARMUP_SECONDS = 2
const ROUNDS = 3
const SECONDS = 4
const INSTANCES = [1, 2, 3]
const TEAMS = [1, 10, 100, 1_000]

interface Target {
  readonly url: string
  readonly keys: ReadonlyArray<string>
}

/** Loads every target at once, `CONNECTIONS` split between them; keys taken in turn. */
const drive = async (targets: ReadonlyArray<Target>, seconds: number): Promise<Load.Figures> => {
  const each = await Promise.all(
    targets.map((target, i) => {
      let next = 0
      return Load.run({
        url: `${target.url}/v1/chat/completions`,
        method: "POST",
        connections: Math.floor(CONNECTIONS / targets.length) + (i < CONNECTIONS % targets.length ? 1 : 0),
        pipelining: 1,
        duration: seconds,
        headers: { "content-type": "application/json" },
        body: BODY,
        requests: [
          {
            setupRequest: (request) => ({
              ...request,
              headers: {
                ...request.headers,
                authorization: `Bearer ${target.keys[next++ % target.keys.length] ?? ""}`
              }
            })
          }
        ]
      })
    })
  )
  return {
    rps: each.reduce((sum, f) => sum + f.rps, 0),
    p50: Math.max(...each.map((f) => f.p50)),
    p99: Math.max(...each.map((f) => f.p99)),
    errors: each.reduce((sum, f) => sum + f.errors, 0)
  }
}

/** `count` proxies on one config, started together (their migrations wait for each other). */
const withProxies = async <A>(
  count: number,
  configPath: string,
  use: (urls: ReadonlyArray<string>) => Promise<A>
): Promise<A> => {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => Processes.startProxy(configPath))
  )
  const proxies = started.flatMap((s): Array<Processes.Started> =>
    s.status === "fulfilled" ? [s.value] : []
  )
  try {
    const failed = started.find((s) => s.status === "rejected")
    if (failed !== undefined) throw failed.reason
    return await use(proxies.map((proxy) => proxy.match[1] ?? ""))
  } finally {
    await Promise.all(proxies.map((proxy) => Processes.stop(proxy.child)))
  }
}

const newTeam = async (url: string, teamId: string): Promise<string> => {
  await post(`${url}/team/new`, MASTER_KEY, { team_id: teamId, team_alias: teamId, max_budget: 1_000_000 })
  return String((await post(`${url}/key/generate`, MASTER_KEY, { team_id: teamId }))["key"])
}

const chatOnce = async (url: string, key: string): Promise<void> => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: BODY
  })
  if (!response.ok) throw new Error(`warming a key: ${response.status}`)
  await response.arrayBuffer()
}

/** Runs `f` over `items`, `width` at a time, keeping their order. */
const inBatches = async <A, B>(items: ReadonlyArray<A>, width: number, f: (a: A) => Promise<B>) => {
  const out: Array<B> = []
  for (let i = 0; i < items.length; i += width)
    out.push(...(await Promise.all(items.slice(i, i + width).map(f))))
  return out
}

interface Setup {
  readonly label: string
  readonly targets: ReadonlyArray<Target>
}

/**
 * Three instances and every team made once; each setup loads some of them. Setups
 * alternate round after round, so the machine's drift hits them all alike.
 */
const measure = (dir: string, upstreamUrl: string) =>
  Processes.withFreshDatabase((databaseUrl) =>
    withProxies(
      Math.max(...INSTANCES),
      Processes.writeProxyConfig(dir, "scaling", { upstreamUrl, databaseUrl, masterKey: MASTER_KEY }),
      async (urls) => {
        const first = urls[0] ?? ""
        await post(`${first}/team/new`, MASTER_KEY, {
          team_id: "hot",
          team_alias: "hot",
          max_budget: 1_000_000
        })
        // One key per instance, each made through its own instance.
        const hot = await Promise.all(
          urls.map(async (url) => ({
            url,
            keys: [String((await post(`${url}/key/generate`, MASTER_KEY, { team_id: "hot" }))["key"])]
          }))
        )
        const teamKeys = await inBatches(
          Array.from({ length: Math.max(...TEAMS) }, (_, i) => `team-${i}`),
          16,
          (teamId) => newTeam(first, teamId)
        )
        const setups: ReadonlyArray<Setup> = [
          ...INSTANCES.map((n) => ({
            label: `${n} instance${n === 1 ? "" : "s"}, 1 team`,
            targets: hot.slice(0, n)
          })),
          ...TEAMS.filter((n) => n > 1).map((n) => ({
            label: `1 instance, ${n.toLocaleString("en-US")} teams`,
            targets: [{ url: first, keys: teamKeys.slice(0, n) }]
          }))
        ]
        // Every key once, so no setup starts with cold keys; after that each key is read again
        // when its cache entry expires (60 s by default), as it would be in service.
        await inBatches(teamKeys, 16, (key) => chatOnce(first, key))
        for (const setup of setups) await drive(setup.targets, WARMUP_SECONDS)
        const rounds = setups.map((): Array<Load.Figures> => [])
        for (let round = 0; round < ROUNDS; round++) {
          for (const [i, setup] of setups.entries()) rounds[i]?.push(await drive(setup.targets, SECONDS))
        }
        return setups.map((setup, i) => ({ label: setup.label, figures: Load.mean(rounds[i] ?? []) }))
      }
    )
  )

export const run = async (): Promise<string> => {
  if (!(await Processes.pgReachable())) {
    return "### Scaling on PostgreSQL\n\nPostgreSQL was not reachable at 127.0.0.1:5432: no figures.\n"
  }
  const dir = mkdtempSync(join(tmpdir(), "tb-bench-scaling-"))
  const upstream = await Processes.startChild(
    ["bench/proxyUpstream.ts"],
    { LATENCY_MS: "0" },
    /^READY (\d+)$/
  )
  const upstreamUrl = `http://127.0.0.1:${upstream.match[1]}`
  const load = loadavg()
  let rows: ReadonlyArray<{ readonly label: string; readonly figures: Load.Figures }> = []
  try {
    rows = await measure(dir, upstreamUrl)
  } finally {
    await Processes.stop(upstream.child)
    rmSync(dir, { recursive: true, force: true })
  }
  const base = rows[0]?.figures.rps ?? Number.NaN
  return [
    "### Scaling: proxy instances and teams on one PostgreSQL database",
    "",
    `Three proxy instances on one fresh database and ${CONNECTIONS} connections in total, autocannon ` +
      "(one per instance loaded, run together, the connections split evenly; idle instances stay up); " +
      `mean of ${ROUNDS} rounds of ${SECONDS} s per setup, setups alternating, after a ${WARMUP_SECONDS} s ` +
      "warm-up each; an instant provider. Every call is authorised, held on its key and team, forwarded, " +
      "settled and logged. req/s is summed over the instances; p50 and p99 are the highest of the " +
      `instances'. Load average (1 min) when the section started: ${fmt(load[0] ?? 0, 1)}.`,
    "",
    "| setup | req/s | vs. 1 instance, 1 team | p50 ms | p99 ms | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      ({ label, figures }) =>
        `| ${label} | ${fmt(figures.rps, 0)} | ${fmt(figures.rps / base, 2)} | ${fmt(figures.p50, 1)} | ` +
        `${fmt(figures.p99, 1)} | ${figures.errors} |`
    ),
    ""
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await run())
