/**
 * The embedded store's side index of the spend log (`SqliteSpendLogIndex.ts`): the
 * ledger's batches index the log in bulk once enough rows gather, and a query by key,
 * user or team reads the index up to its watermark and the rows above it directly.
 * Every filtered query must answer exactly what a scan of the whole log answers, on
 * both sides of the watermark; a database logged before the index existed is indexed
 * whole by its migration.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { DateTime, Effect, Layer, Option, Schema } from "effect"
import {
  Ids,
  Money,
  type Scope,
  SpendLedger,
  type SpendLog,
  SpendLogRepo,
  SqlStore,
  type StoreServices
} from "../src/index.js"
import * as Dialect from "../src/store/sql/Dialect.js"
import { migrations, MIGRATIONS_TABLE } from "../src/store/sql/Migrations.js"
import { CATCH_UP_ROWS, catchUp, WALK_PAGE } from "../src/store/sql/SqliteSpendLogIndex.js"
import { holdId, requestId } from "./conformance/fixtures.js"
import { keyId, teamId, userId } from "./support/fixtures.js"

/** A fresh database file, removed afterwards. */
const onFile = <A, E>(body: (filename: string) => Effect.Effect<A, E, never>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "teambudget-log-index-"))),
    (dir) => body(join(dir, "store.db")),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

const withStore = <A, E>(filename: string, body: Effect.Effect<A, E, StoreServices | SqlClient>) =>
  Effect.scoped(
    Effect.flatMap(
      Layer.build(SqlStore.layer().pipe(Layer.provideMerge(SqlStore.sqliteClient({ filename })))),
      (store) => Effect.provide(body, store)
    )
  )

const GLOBAL: ReadonlyArray<Scope.ScopeRef> = [{ kind: "global" }]
const KEYS = 7
const USERS = 5
const TEAMS = 3
const BASE = Date.UTC(2026, 10, 1)
/** A history the migration indexes in more than one run. */
const OLD_ROWS = 70_000

/** Request `i`: its key, user (none for every sixth) and team (none for every fourth) vary independently. */
const who = (i: number) => ({
  keyId: keyId(`key-${i % KEYS}`),
  userId: i % 6 === 0 ? Option.none() : Option.some(userId(`user-${i % USERS}`)),
  teamId: i % 4 === 0 ? Option.none() : Option.some(teamId(`team-${i % TEAMS}`))
})

/** When request `i` started: out of id order on purpose (a request that started earlier may settle later). */
const startOf = (i: number): number => BASE + ((i * 7919) % 5000) * 1_000

/** Log rows for requests `from` to `to - 1`, written straight into the table on `db`, as the ledger writes them. */
const writeRows = (db: Database.Database, from: number, to: number, prefix: string) => {
  const insert =
    db.prepare(`INSERT INTO tb_spend_logs (request_id, key_id, key_hash, key_label, user_id, team_id,
    organization_id, end_user, model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status)
    VALUES (?, ?, ?, 'sk-...test', ?, ?, NULL, NULL, 'gpt-test', 1, 1, ?, ?, ?, 'success')`)
  for (let i = from; i < to; i++) {
    const { keyId: key, userId: user, teamId: team } = who(i)
    const started = startOf(i)
    insert.run(
      `${prefix}-${i}`,
      key,
      "a".repeat(64),
      Option.getOrNull(user),
      Option.getOrNull(team),
      i + 1,
      started,
      started + 1
    )
  }
}

/** Holds and settles requests `from` to `to - 1` through the ledger, all waiting at once. */
const logRequests = (from: number, to: number) =>
  Effect.flatMap(SpendLedger, (ledger) =>
    Effect.forEach(
      Array.from({ length: to - from }, (_, n) => from + n),
      (i) =>
        Effect.gen(function* () {
          const id = `req-${String(i).padStart(6, "0")}`
          const held = yield* ledger.hold({
            holdId: holdId(id),
            scopes: GLOBAL,
            amount: Money.make(1_000n),
            mode: "strict"
          })
          yield* ledger.settle(held, Money.make(BigInt(i + 1)), {
            requestId: requestId(id),
            ...who(i),
            keyHash: Schema.decodeSync(Ids.KeyHash)("a".repeat(64)),
            keyLabel: "sk-...test",
            organizationId: Option.none(),
            endUser: Option.none(),
            model: "gpt-test",
            promptTokens: 1,
            completionTokens: 1,
            startedAt: DateTime.unsafeMake(startOf(i)),
            status: "success"
          })
        }),
      { concurrency: "unbounded", discard: true }
    )
  )

const watermark = Effect.flatMap(SqlClient, (sql) =>
  Effect.map(
    sql<{ readonly through: number }>`SELECT through FROM tb_spend_log_indexed WHERE id = 1`,
    (rows) => rows[0]?.through ?? -1
  )
)

const ids = (rows: ReadonlyArray<SpendLog.SpendLog>) => rows.map((row) => row.requestId)

/**
 * Every filter the index serves (alone, together, with dates and limits) answers what
 * filtering the whole log by hand answers, in the same order.
 */
const expectFiltersExact = Effect.gen(function* () {
  const logs = yield* SpendLogRepo
  const all = yield* logs.query({ limit: 1_000_000 })
  const from = DateTime.unsafeMake(BASE + 1_000_000)
  const to = DateTime.unsafeMake(BASE + 3_500_000)
  const within = (row: SpendLog.SpendLog) =>
    DateTime.greaterThanOrEqualTo(row.startedAt, from) && DateTime.lessThan(row.startedAt, to)
  const cases: Array<{
    readonly filter: Parameters<typeof logs.query>[0]
    readonly keep: (row: SpendLog.SpendLog) => boolean
  }> = []
  for (let k = 0; k <= KEYS; k++) {
    const id = keyId(`key-${k}`)
    cases.push({ filter: { keyId: id }, keep: (row) => row.keyId === id })
    cases.push({ filter: { keyId: id, limit: 7 }, keep: (row) => row.keyId === id })
    cases.push({
      filter: { keyId: id, startDate: from, endDate: to },
      keep: (row) => row.keyId === id && within(row)
    })
  }
  for (let u = 0; u <= USERS; u++) {
    const id = userId(`user-${u}`)
    cases.push({ filter: { userId: id }, keep: (row) => Option.contains(row.userId, id) })
    cases.push({
      filter: { userId: id, startDate: from },
      keep: (row) => Option.contains(row.userId, id) && DateTime.greaterThanOrEqualTo(row.startedAt, from)
    })
  }
  for (let t = 0; t <= TEAMS; t++) {
    const id = teamId(`team-${t}`)
    cases.push({ filter: { teamId: id }, keep: (row) => Option.contains(row.teamId, id) })
    cases.push({
      filter: { teamId: id, endDate: to, limit: 25 },
      keep: (row) => Option.contains(row.teamId, id) && DateTime.lessThan(row.startedAt, to)
    })
    const user = userId(`user-${t}`)
    cases.push({
      filter: { teamId: id, userId: user },
      keep: (row) => Option.contains(row.teamId, id) && Option.contains(row.userId, user)
    })
  }
  for (const { filter, keep } of cases) {
    const expected = ids(all.filter(keep)).slice(0, filter.limit ?? 1000)
    expect(ids(yield* logs.query(filter)), JSON.stringify(filter)).toEqual(expected)
  }
  return all.length
})

describe("the embedded store's spend log side index", () => {
  it.live(
    "filters answer exactly on both sides of the watermark, as the batches move it",
    () =>
      onFile((filename) =>
        withStore(
          filename,
          Effect.gen(function* () {
            expect(yield* watermark).toBe(0)
            // Fewer rows than a catch-up needs: nothing is indexed yet, every query reads the log's tail.
            yield* logRequests(0, 300)
            expect(yield* watermark).toBe(0)
            expect(yield* expectFiltersExact).toBe(300)
            // Past the threshold: the batch that crosses it indexes everything logged so far.
            yield* logRequests(300, CATCH_UP_ROWS + 100)
            expect(yield* watermark).toBe(CATCH_UP_ROWS + 100)
            // Rows after it stay above the watermark until the next catch-up: queries read both parts.
            yield* logRequests(CATCH_UP_ROWS + 100, CATCH_UP_ROWS + 500)
            expect(yield* watermark).toBe(CATCH_UP_ROWS + 100)
            expect(yield* expectFiltersExact).toBe(CATCH_UP_ROWS + 500)
          })
        )
      ),
    60_000
  )

  it.live(
    "postings that cannot be written leave the batch's steps committed, and are written later",
    () =>
      onFile((filename) =>
        withStore(
          filename,
          Effect.gen(function* () {
            // Moving the watermark fails, after the postings were written: both must go, or the
            // same rows would be posted again (and refused as duplicates) at every later try.
            const other = new Database(filename)
            other.exec(`CREATE TRIGGER tb_test_refuse BEFORE UPDATE ON tb_spend_log_indexed
              BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)
            yield* logRequests(0, CATCH_UP_ROWS + 100)
            expect(yield* watermark).toBe(0)
            const sql = yield* SqlClient
            const logged = yield* sql<{ readonly n: number }>`SELECT count(*) AS n FROM tb_spend_logs`
            expect(logged[0]?.n).toBe(CATCH_UP_ROWS + 100)
            const spend = yield* Effect.flatMap(SpendLedger, (ledger) => ledger.spendOf({ kind: "global" }))
            // Each request i settled i + 1 nano-dollars: 1 + 2 + ... + n.
            const n = BigInt(CATCH_UP_ROWS + 100)
            expect(spend.total).toBe(Money.make((n * (n + 1n)) / 2n))
            const posted = yield* sql<{ readonly n: number }>`SELECT count(*) AS n FROM tb_spend_log_index`
            expect(posted[0]?.n).toBe(0)
            other.exec("DROP TRIGGER tb_test_refuse")
            other.close()
            // The next try, as many rows later, indexes everything above the watermark.
            yield* logRequests(CATCH_UP_ROWS + 100, 2 * CATCH_UP_ROWS + 200)
            expect(yield* watermark).toBe(2 * CATCH_UP_ROWS + 200)
            expect(yield* expectFiltersExact).toBe(2 * CATCH_UP_ROWS + 200)
          })
        )
      ),
    60_000
  )

  it.live(
    "a filter walks many runs of postings, newest first, and answers exactly",
    () =>
      onFile((filename) =>
        withStore(
          filename,
          Effect.gen(function* () {
            // Far more runs per key than one page of the walk: ten rows, then a catch-up, over and over,
            // with start times out of order across runs.
            const runs = 3 * WALK_PAGE
            yield* Effect.sync(() => {
              const other = new Database(filename)
              for (let run = 0; run < runs; run++) {
                other.transaction(() => {
                  writeRows(other, run * 10, run * 10 + 10, "run")
                  catchUp(other)
                })()
              }
              other.close()
            })
            const sql = yield* SqlClient
            const postings = yield* sql<{
              readonly n: number
            }>`SELECT count(*) AS n FROM tb_spend_log_index WHERE kind = 'key' AND value = 'key-0'`
            expect(postings[0]?.n).toBeGreaterThan(2 * WALK_PAGE)
            expect(yield* expectFiltersExact).toBe(runs * 10)
          })
        )
      ),
    60_000
  )

  it.live(
    "a log written before the index existed is indexed whole by the migration",
    () =>
      onFile((filename) =>
        Effect.gen(function* () {
          const before = Object.fromEntries(Object.entries(migrations).filter(([id]) => !id.startsWith("6_")))
          // A store of the release before: migrated without the index, then used.
          yield* Effect.scoped(
            Effect.gen(function* () {
              const sql = yield* SqlClient
              yield* sql.withTransaction(
                Effect.zipRight(
                  Dialect.prepareMigrations(sql, MIGRATIONS_TABLE),
                  Migrator.make({})({ loader: Migrator.fromRecord(before), table: MIGRATIONS_TABLE })
                )
              )
              const indexes = yield* sql<{
                readonly name: string
              }>`SELECT name FROM sqlite_master WHERE type = 'index'`
              expect(indexes.map((row) => row.name)).toContain("tb_spend_logs_key")
            }).pipe(Effect.provide(SqlStore.sqliteClient({ filename })))
          )
          // The old store's history, in the columns its ledger wrote; long enough that the
          // migration indexes it in several runs.
          yield* Effect.sync(() => {
            const old = new Database(filename)
            old.transaction(() => writeRows(old, 0, OLD_ROWS, "old"))()
            old.close()
          })
          // The new release migrates at start-up: the old rows are indexed and the old indexes gone.
          yield* withStore(
            filename,
            Effect.gen(function* () {
              const sql = yield* SqlClient
              expect(yield* watermark).toBe(OLD_ROWS)
              const runs = yield* sql<{
                readonly n: number
              }>`SELECT count(*) AS n FROM tb_spend_log_index WHERE kind = 'key' AND value = 'key-0'`
              expect(runs[0]?.n).toBeGreaterThan(1)
              const indexes = yield* sql<{
                readonly name: string
              }>`SELECT name FROM sqlite_master WHERE type = 'index'`
              expect(indexes.map((row) => row.name)).not.toContain("tb_spend_logs_key")
              expect(yield* expectFiltersExact).toBe(OLD_ROWS)
              // And the log goes on from there.
              yield* logRequests(OLD_ROWS, OLD_ROWS + 100)
              expect(yield* expectFiltersExact).toBe(OLD_ROWS + 100)
            })
          )
        })
      ),
    60_000
  )
})
