/**
 * The rate-limit stores under load: 64 concurrent clients on one hot set of buckets
 * (a key's and its team's requests and tokens), each admission an acquire plus its
 * complete, on every store: memory, SQLite (a file, WAL), PostgreSQL (a database made
 * for the run) and Redis. Limits are high enough that every request is admitted, so
 * every step writes. Then the added cost of enabling limits: authorize + settle on the
 * memory store with and without `rpm_limit`/`tpm_limit` on the key, as a ratio.
 *
 *   node scripts/run.mjs bench/ratelimit.ts [--seconds 5] [--pg-url postgres://...] [--redis-url redis://...]
 *                                        [--no-pg] [--no-redis]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import {
  BudgetPolicy,
  Limits,
  MemoryRateLimits,
  RateLimitStore,
  RedisRateLimits,
  SqlStore
} from "../src/index.js"
import type { RateRule } from "../src/store/RateLimitStore.js"
import { seed, services } from "./fixture.js"
import { arg, fmt, percentile, timeBatches } from "./stats.js"

const CLIENTS = 64

const seconds = Number(arg("--seconds") ?? "5")

const RULES: ReadonlyArray<RateRule> = [
  { bucket: "key:bench:requests", kind: "requests", limit: 100_000_000 },
  { bucket: "key:bench:tokens", kind: "tokens", limit: 1_000_000_000 },
  { bucket: "team:bench:requests", kind: "requests", limit: 100_000_000 },
  { bucket: "team:bench:tokens", kind: "tokens", limit: 1_000_000_000 }
]

let tickets = 0

const admission = Effect.flatMap(RateLimitStore, (store) => {
  const ticketId = `bench-${++tickets}`
  const now = Date.now()
  return Effect.zipRight(
    store.acquire({ ticketId, rules: RULES, tokens: 120, now, leaseMillis: 60_000 }),
    store.complete({ ticketId, rules: RULES, tokensDelta: -40, refundRequest: false, now })
  )
})

const rows: Array<string> = []

const measure = async (name: string, store: Layer.Layer<RateLimitStore, unknown>, note: string) => {
  const runtime = ManagedRuntime.make(store)
  try {
    const loop = async (until: number, latencies: Array<number> | undefined) => {
      while (performance.now() < until) {
        const start = performance.now()
        await runtime.runPromise(admission)
        latencies?.push(performance.now() - start)
      }
    }
    // Warm up: connections, prepared statements, buckets that do not exist yet.
    await Promise.all(Array.from({ length: CLIENTS }, () => loop(performance.now() + 1_000, undefined)))
    const latencies: Array<number> = []
    const started = performance.now()
    await Promise.all(Array.from({ length: CLIENTS }, () => loop(started + seconds * 1_000, latencies)))
    const elapsed = (performance.now() - started) / 1_000
    latencies.sort((a, b) => a - b)
    const perSecond = latencies.length / elapsed
    rows.push(
      `| ${name} | ${latencies.length} | ${fmt(perSecond, 0)} | ${fmt(percentile(latencies, 50), 3)} | ${fmt(percentile(latencies, 99), 3)} | ${note} |`
    )
    console.error(`${name}: ${fmt(perSecond, 0)} admissions/s`)
  } finally {
    await runtime.dispose()
  }
}

const pg = async () => {
  const base = arg("--pg-url") ?? process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
  const database = `teambudget_bench_rl_${Date.now()}`
  const run = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(PgClient.PgClient, f).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(base), maxConnections: 1 }))
        )
      )
    )
  await run((sql) => sql`CREATE DATABASE ${sql(database)}`)
  const url = new URL(base)
  url.pathname = `/${database}`
  try {
    await measure(
      "PostgreSQL",
      SqlStore.layer().pipe(
        Layer.provide(SqlStore.pgClient({ url: Redacted.make(url.toString()), maxConnections: 16 }))
      ),
      "pool of 16, one statement per step, commits without waiting for the disk"
    )
  } finally {
    await run((sql) => sql`DROP DATABASE IF EXISTS ${sql(database)} WITH (FORCE)`)
  }
}

const sqlite = async () => {
  const dir = mkdtempSync(join(tmpdir(), "teambudget-bench-"))
  try {
    await measure(
      "SQLite",
      SqlStore.layerSqlite({ filename: join(dir, "bench.db") }),
      "file, WAL, one connection"
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const redis = () =>
  measure(
    "Redis",
    RedisRateLimits.layer({
      url: Redacted.make(arg("--redis-url") ?? process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"),
      prefix: `{teambudget-bench-${Date.now()}}:rl`
    }),
    "one client, one script per step"
  )

/** authorize + settle on a memory store of its own, for a key with `keyLimits`. */
const policyProgram = async (keyLimits: Limits.Limits) => {
  const runtime = ManagedRuntime.make(services)
  const token = await seed(runtime, keyLimits)
  const policy = await runtime.runPromise(BudgetPolicy.BudgetPolicy)
  const request = { apiKey: token, model: "bench", promptTokens: 20, maxOutputTokens: 100 }
  const usage = { promptTokens: 20, completionTokens: 60 }
  const program = Effect.flatMap(policy.authorize(request), (admitted) => policy.settle(admitted, usage))
  return { runtime, once: () => runtime.runPromise(program) }
}

/**
 * Median µs per authorize + settle without and with limits on the key. The two run in
 * alternating rounds, so a change in the machine's load meets both alike.
 */
const policyCost = async () => {
  const limited = new Limits.Limits({
    ...Limits.none,
    rpmLimit: Option.some(100_000_000),
    tpmLimit: Option.some(1_000_000_000)
  })
  const programs = [await policyProgram(Limits.none), await policyProgram(limited)] as const
  const times: [Array<number>, Array<number>] = [[], []]
  for (let round = 0; round < 20; round++) {
    for (const [i, program] of programs.entries()) {
      const batch = await timeBatches(program.once, {
        batches: 5,
        batchSize: 500,
        warmup: round === 0 ? 5_000 : 500
      })
      times[i]?.push(...batch)
    }
  }
  await Promise.all(programs.map((program) => program.runtime.dispose()))
  return times.map((t) =>
    percentile(
      t.sort((a, b) => a - b),
      50
    )
  )
}

/** The benchmark as a Markdown section. */
export const run = async (): Promise<string> => {
  await measure(
    "memory",
    Layer.sync(RateLimitStore, () => MemoryRateLimits.make(MemoryRateLimits.makeState())),
    "in process"
  )
  await sqlite()
  if (!process.argv.includes("--no-pg")) await pg()
  if (!process.argv.includes("--no-redis")) await redis()

  const [without = Number.NaN, withLimits = Number.NaN] = await policyCost()
  return [
    `### Rate-limit stores: ${CLIENTS} concurrent clients, one hot bucket set (key + team rpm/tpm), ${seconds} s each`,
    "",
    "| store | admissions | admissions/s | p50 ms | p99 ms | setup |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
    ...rows,
    "",
    "An admission is an acquire over the four rules plus its complete (a token correction).",
    "",
    "#### Cost of enabling limits: authorize + settle, memory store, warm key cache",
    "",
    "| key | median µs/request |",
    "| --- | ---: |",
    `| no rate limits | ${fmt(without)} |`,
    `| rpm_limit + tpm_limit | ${fmt(withLimits)} |`,
    "",
    `Ratio with limits / without: **${fmt(withLimits / without, 2)}×** (+${fmt(withLimits - without)} µs per request).`,
    ""
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  console.log(`Node ${process.version}, ${cpus().length} CPU(s): ${cpus()[0]?.model ?? "unknown"}\n`)
  console.log(await run())
}
