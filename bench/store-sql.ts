/**
 * The SQL stores under load: 64 concurrent clients (each with its own key) against one
 * shared team budget, doing hold+settle on the ledger and authorize+settle through
 * `BudgetPolicy` (warm key cache), on PostgreSQL and on SQLite (a file, WAL).
 * Reports requests/s, p50/p99 latency, SQL round trips per request (statements plus
 * the BEGIN and COMMIT of each transaction), commits and CPU time per request, with group
 * commit on and, in the same run for the ratio, off.
 *
 *   node scripts/run.mjs bench/store-sql.ts [--seconds 5] [--pg-url postgres://...] [--no-pg] [--no-sqlite]
 *                                        [--async-commit] [--pool 16] [--clients 64]
 *                                        [--no-group-commit | --no-compare]
 *
 * PostgreSQL runs in a database made for the run (and dropped after) on `--pg-url`,
 * else `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/postgres, with the
 * server's own durability settings (printed with the results), or with
 * `synchronous_commit = off` for that database with `--async-commit`. Every request
 * on one team budget queues on that team's counter row, which stays locked until the
 * commit is durable: with one transaction per step the disk's flush time bounds the
 * rate; group commit makes one flush serve every step waiting at that moment.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, ManagedRuntime, Option, Redacted, Schema, Tracer } from "effect"
import {
  BudgetPolicy,
  Ids,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Limits,
  MembershipRepo,
  Money,
  Pricing,
  type Scope,
  SpendLedger,
  SqlStore,
  type StoreServices,
  TeamRepo,
  Token,
  UserRepo
} from "../src/index.js"
import { arg, fmt, percentile } from "./stats.js"

const CLIENTS = Number(arg("--clients") ?? "64")
/** Group commit on, and (unless `--no-compare`) off, measured in the same run for the ratio. */
const commitModes: ReadonlyArray<boolean> = process.argv.includes("--no-group-commit")
  ? [false]
  : process.argv.includes("--no-compare")
    ? [true]
    : [true, false]
const commitNote = (groupCommit: boolean) => (groupCommit ? "group commit" : "no group commit")

const seconds = Number(arg("--seconds") ?? "5")
const pool = Number(arg("--pool") ?? "16")

/**
 * Counts SQL round trips (every statement, and BEGIN + COMMIT per transaction) and
 * commits (transactions, plus statements run outside one, which commit on their own):
 * each commit is one wait for the disk on PostgreSQL.
 */
const counter = { on: false, statements: 0, transactions: 0, commits: 0 }
const inTransaction = (parent: Option.Option<Tracer.AnySpan>): boolean => {
  let current = parent
  while (Option.isSome(current)) {
    const span = current.value
    if (span._tag === "Span" && span.name === "sql.transaction") return true
    current = span._tag === "Span" ? span.parent : Option.none()
  }
  return false
}
const tracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    if (counter.on && name === "sql.execute") counter.statements++
    if (counter.on && name === "sql.transaction") counter.transactions++
    if (counter.on && (name === "sql.execute" || name === "sql.transaction") && !inTransaction(parent)) {
      counter.commits++
    }
    let status: Tracer.SpanStatus = { _tag: "Started", startTime }
    const span: Tracer.Span = {
      _tag: "Span",
      name,
      spanId: "bench",
      traceId: "bench",
      parent,
      context,
      get status() {
        return status
      },
      attributes: new Map(),
      links,
      sampled: true,
      kind,
      end: (endTime, exit) => {
        status = { _tag: "Ended", startTime, endTime, exit }
      },
      attribute: () => {},
      event: () => {},
      addLinks: () => {}
    }
    return span
  },
  context: (f) => f()
})

/**
 * The services of one instance. Only the instance that counts round trips installs the
 * counting tracer: with any tracer installed every traced call makes a real span (a
 * stack capture each), which would cost the measured instance about 0.2 ms of CPU per
 * request that a host without a tracer never pays.
 */
const services = <E>(store: Layer.Layer<StoreServices, E>, counting: boolean) =>
  BudgetPolicy.layer().pipe(
    Layer.provideMerge(KeyAuth.layer().pipe(Layer.provideMerge(Invalidation.layerLocal))),
    Layer.provideMerge(
      Pricing.layer({
        catalogue: false,
        models: { bench: { inputCostPerToken: 0.000001, outputCostPerToken: 0.000002 } }
      })
    ),
    Layer.provideMerge(store),
    Layer.provide(counting ? Layer.setTracer(tracer) : Layer.empty)
  )

interface Client {
  readonly token: string
  readonly scopes: ReadonlyArray<Scope.ScopeRef>
}

const setup = Effect.gen(function* () {
  const teamId = Schema.decodeSync(Ids.TeamId)("bench-team")
  yield* Effect.flatMap(TeamRepo, (teams) =>
    teams.insert({
      teamId,
      teamAlias: "bench",
      organizationId: Option.none(),
      limits: new Limits.Limits({
        ...Limits.none,
        maxBudget: Option.some(Money.make(100_000_000n * Money.NANOS_PER_USD))
      }),
      models: [],
      blocked: false,
      metadata: {}
    })
  )
  const clients: Array<Client> = []
  for (let i = 0; i < CLIENTS; i++) {
    const userId = Schema.decodeSync(Ids.UserId)(`user-${i}`)
    yield* Effect.flatMap(UserRepo, (users) =>
      users.insert({
        userId,
        userEmail: Option.none(),
        userRole: "internal_user",
        limits: Limits.none,
        models: [],
        blocked: false,
        metadata: {}
      })
    )
    yield* Effect.flatMap(MembershipRepo, (m) =>
      m.add(teamId, [{ userId, role: "user", limits: Option.none() }])
    )
    const token = Token.generateToken()
    const hash = Token.hashToken(token)
    yield* Effect.flatMap(KeyRepo, (keys) =>
      keys.insert({
        keyId: Schema.decodeSync(Ids.KeyId)(`key-${i}`),
        hash,
        keyAlias: Option.none(),
        displayPrefix: Token.displayPrefix(token),
        userId: Option.some(userId),
        teamId: Option.some(teamId),
        limits: Limits.none,
        models: [],
        expires: Option.none(),
        blocked: false,
        metadata: {}
      })
    )
    clients.push({
      token,
      scopes: [
        { kind: "key", id: hash, label: Token.displayPrefix(token) },
        { kind: "user", id: userId },
        { kind: "membership", teamId, userId },
        { kind: "team", id: teamId },
        { kind: "global" }
      ]
    })
  }
  return clients
})

let holds = 0

const holdSettle = (client: Client) =>
  Effect.gen(function* () {
    const ledger = yield* SpendLedger
    const held = yield* ledger.hold({
      holdId: Schema.decodeSync(Ids.HoldId)(`bench-${++holds}-${client.token.slice(-6)}`),
      scopes: client.scopes,
      amount: Money.make(300_000n),
      mode: "strict"
    })
    yield* ledger.settle(held, Money.make(180_000n), {
      requestId: Schema.decodeSync(Ids.RequestId)(held.holdId),
      keyId: Schema.decodeSync(Ids.KeyId)("key-0"),
      keyHash: Token.hashToken(client.token),
      keyLabel: "bench",
      userId: Option.none(),
      teamId: Option.none(),
      organizationId: Option.none(),
      endUser: Option.none(),
      model: "bench",
      promptTokens: 20,
      completionTokens: 60,
      startedAt: held.expiresAt,
      status: "success"
    })
  })

const authorizeSettle = (client: Client) =>
  Effect.gen(function* () {
    const policy = yield* BudgetPolicy.BudgetPolicy
    const admission = yield* policy.authorize({
      apiKey: client.token,
      model: "bench",
      promptTokens: 20,
      maxOutputTokens: 100
    })
    yield* policy.settle(admission, { promptTokens: 20, completionTokens: 60 })
  })

interface Result {
  readonly requests: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly roundTrips: number
  readonly commits: number
  /** CPU time of this process (the load generator included) per request, in ms. */
  readonly cpu: number
}

/** Runs the clients' requests until `until`, recording each latency. */
const load = <R>(
  runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
  clients: ReadonlyArray<Client>,
  request: (client: Client) => Effect.Effect<unknown, unknown, R>,
  until: number,
  latencies: Array<number>
) =>
  Promise.all(
    clients.map(async (client) => {
      while (performance.now() < until) {
        const start = performance.now()
        await runtime.runPromise(request(client))
        latencies.push(performance.now() - start)
      }
    })
  )

/** Seconds of the pass that counts round trips, on the counting instance. */
const COUNT_SECONDS = 2

const measure = async <R>(
  runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
  counting: ManagedRuntime.ManagedRuntime<R, unknown>,
  clients: ReadonlyArray<Client>,
  request: (client: Client) => Effect.Effect<unknown, unknown, R>
): Promise<Result> => {
  // Warm up: the key cache, counters that do not exist yet, the connections.
  await load(runtime, clients, request, performance.now() + 1_000, [])
  const latencies: Array<number> = []
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  await load(runtime, clients, request, started + seconds * 1_000, latencies)
  const elapsed = (performance.now() - started) / 1_000
  const cpu = process.cpuUsage(cpuBefore)
  latencies.sort((a, b) => a - b)
  // The same load on the counting instance, alone, for the round trips and commits.
  await load(counting, clients, request, performance.now() + 1_000, [])
  const counted: Array<number> = []
  counter.statements = 0
  counter.transactions = 0
  counter.commits = 0
  counter.on = true
  await load(counting, clients, request, performance.now() + COUNT_SECONDS * 1_000, counted)
  counter.on = false
  return {
    requests: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    roundTrips: (counter.statements + 2 * counter.transactions) / counted.length,
    commits: counter.commits / counted.length,
    cpu: (cpu.user + cpu.system) / 1_000 / latencies.length
  }
}

const rows: Array<string> = []

// SQLite's ledger steps run synchronously on better-sqlite3, outside the SQL client the tracer
// sees, so nothing is counted there: say so instead of printing a zero.
const counted = (value: number): string => (value === 0 ? "n/a" : fmt(value))

const scenario = async <E>(name: string, store: Layer.Layer<StoreServices, E>, note: string) => {
  const runtime = ManagedRuntime.make(services(store, false))
  // A second instance on the same database, used only to count round trips.
  const counting = ManagedRuntime.make(services(store, true))
  try {
    const clients = await runtime.runPromise(setup)
    for (const [label, request] of [
      ["hold + settle", holdSettle],
      ["authorize + settle", authorizeSettle]
    ] as const) {
      const r = await measure(runtime, counting, clients, request)
      rows.push(
        `| ${name} | ${label} | ${r.requests} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${counted(r.roundTrips)} | ${counted(r.commits)} | ${fmt(r.cpu, 3)} | ${note} |`
      )
      console.error(`${name}, ${label}: ${fmt(r.perSecond, 0)} req/s, ${fmt(r.cpu, 3)} ms of CPU per request`)
    }
  } finally {
    await counting.dispose()
    await runtime.dispose()
  }
}

const admin = (url: string) => PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })

const pgScenario = async (groupCommit: boolean) => {
  const base = arg("--pg-url") ?? process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
  const database = `teambudget_bench_${Date.now()}`
  const run = <A>(url: string, f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(admin(url)))))
  const setting = await run(
    base,
    (sql) => sql<{ readonly synchronous_commit: string }>`SHOW synchronous_commit`
  )
  await run(base, (sql) => sql`CREATE DATABASE ${sql(database)}`)
  const asyncCommit = process.argv.includes("--async-commit")
  if (asyncCommit) await run(base, (sql) => sql`ALTER DATABASE ${sql(database)} SET synchronous_commit = off`)
  const url = new URL(base)
  url.pathname = `/${database}`
  try {
    await scenario(
      "PostgreSQL",
      SqlStore.layer({ groupCommit }).pipe(
        Layer.provide(SqlStore.pgClient({ url: Redacted.make(url.toString()), maxConnections: pool }))
      ),
      `pool of ${pool}, synchronous_commit=${asyncCommit ? "off" : (setting[0]?.synchronous_commit ?? "?")}, ${commitNote(groupCommit)}`
    )
  } finally {
    await run(base, (sql) => sql`DROP DATABASE IF EXISTS ${sql(database)} WITH (FORCE)`)
  }
}

const sqliteScenario = async (groupCommit: boolean) => {
  const dir = mkdtempSync(join(tmpdir(), "teambudget-bench-"))
  try {
    await scenario(
      "SQLite",
      SqlStore.layerSqlite({ filename: join(dir, "bench.db"), groupCommit }),
      `file, WAL, one connection, ${commitNote(groupCommit)}`
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The benchmark as a Markdown section. */
export const run = async (): Promise<string> => {
  for (const groupCommit of commitModes) {
    if (!process.argv.includes("--no-pg")) await pgScenario(groupCommit)
  }
  for (const groupCommit of commitModes) {
    if (!process.argv.includes("--no-sqlite")) await sqliteScenario(groupCommit)
  }
  return [
    `### SQL stores: ${CLIENTS} concurrent clients, one shared team budget, ${seconds} s each`,
    "",
    "| store | request | requests | requests/s | p50 ms | p99 ms | SQL round trips/request | commits/request | Node CPU ms/request | setup |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows,
    "",
    "Round trips count every statement plus BEGIN and COMMIT of each transaction, including those of",
    "the shared transactions that serve many waiting requests at once (group commit); commits count",
    "each transaction and each statement run outside one. They are counted by a tracer, in a separate",
    `${COUNT_SECONDS} s pass of the same load on a second instance (an installed tracer makes every traced`,
    "call build a real span, which the measured instance, like a host without a tracer, does not pay",
    "for). On SQLite the ledger's steps run synchronously on better-sqlite3, outside the client the",
    "tracer sees (n/a); counted from the code, a hold is 1 statement and a settle 2 (plus a read of",
    "the hold when this connection did not place it), and each batch adds BEGIN, the counters it",
    "changed (32 to a statement), two checks and COMMIT, all calls into the same process, not network",
    "round trips; the write-ahead log is checkpointed by a worker thread. Node CPU is the benchmark",
    "process's own CPU time (all its threads, the load generator included) per request: it bounds the",
    "rate once the database is no longer waited for."
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  console.log(`Node ${process.version}, ${cpus().length} CPU(s): ${cpus()[0]?.model ?? "unknown"}\n`)
  console.log(await run())
}
