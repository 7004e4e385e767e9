/**
 * The synchronous ledger steps of the embedded store (`SqliteFastPath.ts`): what they
 * remember between batches (the counters, the holds they placed, when the first open
 * hold expires) is dropped as soon as anything else wrote (an entity write through
 * the client, another connection on the file), a step that arrives while the client
 * holds a transaction open waits for it and is not part of it, steps that wait at
 * the same moment commit together with exact totals, and how long a step waits for
 * company follows the load.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { performance } from "node:perf_hooks"
import { Deferred, Effect, Exit, Fiber, Layer, Metric } from "effect"
import { Money, RateLimitStore, type Scope, SqlStore, type StoreServices, TeamRepo } from "../src/index.js"
import * as CommitWait from "../src/store/sql/CommitWait.js"
import { SqliteDatabase } from "../src/store/sql/SqliteConnection.js"
import * as SqliteFastPath from "../src/store/sql/SqliteFastPath.js"
import { groupCommitSteps } from "../src/store/sql/SqlLedger.js"
import { endUserId, failure, hold, makeWorld, settle, spendOf } from "./conformance/fixtures.js"
import { limits, teamId, usd } from "./support/fixtures.js"

/** A store on a fresh database file, removed afterwards. */
const onFile = <A, E>(body: (filename: string) => Effect.Effect<A, E, never>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "teambudget-fast-"))),
    (dir) => body(join(dir, "store.db")),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Runs `body` against a store on a fresh file, with the file's name. */
const withStore = <A, E>(
  body: (filename: string) => Effect.Effect<A, E, StoreServices | SqlClient | SqliteDatabase>
) =>
  onFile((filename) =>
    Effect.scoped(
      Effect.flatMap(
        Layer.build(SqlStore.layer().pipe(Layer.provideMerge(SqlStore.sqliteClient({ filename })))),
        (store) => Effect.provide(body(filename), store)
      )
    )
  )

describe("SQLite synchronous ledger steps", () => {
  it.scoped("a cap changed through the client between two holds binds the second", () =>
    withStore(() =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
        const first = yield* hold(world.scopes, usd(4))
        yield* settle(world, first, usd(4))
        const teams = yield* TeamRepo
        yield* teams.update(teamId("eng"), { limits: limits({ maxBudget: 5 }) })
        const refused = yield* Effect.exit(hold(world.scopes, usd(2)))
        expect(Exit.isFailure(refused)).toBe(true)
        const fits = yield* hold(world.scopes, usd(1))
        expect(fits.amount).toBe(usd(1))
      })
    )
  )

  it.scoped("a counter written by another connection on the file is read again", () =>
    withStore((filename) =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
        const first = yield* hold(world.scopes, usd(1))
        yield* settle(world, first, usd(1))
        // Another process charges the team $8 behind this store's back.
        const other = new Database(filename)
        other.prepare("UPDATE tb_counters SET total = total + ? WHERE scope_key = ?").run(usd(8), "team:eng")
        other.close()
        expect((yield* spendOf(world.team)).total).toBe(usd(9))
        const refused = yield* Effect.exit(hold(world.scopes, usd(2)))
        expect(Exit.isFailure(refused)).toBe(true)
        yield* hold(world.scopes, usd(1))
      })
    )
  )

  it.scoped("a hold closed by another connection on the file is not settled again", () =>
    withStore((filename) =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
        const held = yield* hold(world.scopes, usd(1))
        const other = new Database(filename)
        other
          .prepare("UPDATE tb_holds SET state = 'released', closed_at = 0 WHERE hold_id = ?")
          .run(held.holdId)
        other.close()
        expect((yield* failure(settle(world, held, usd(1)), "HoldClosed")).state).toBe("released")
        expect((yield* spendOf(world.team)).total).toBe(Money.zero)
      })
    )
  )

  it.scoped("an expired hold written by another connection is reclaimed before the next hold", () =>
    withStore((filename) =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 4 }) })
        yield* settle(world, yield* hold(world.scopes, usd(1)), Money.zero)
        // Another process holds $3 on the team until a moment already past.
        const other = new Database(filename)
        other
          .prepare(
            "INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state) VALUES ('elsewhere', ?, ?, -1, 'open')"
          )
          .run(JSON.stringify(["team:eng"]), usd(3))
        other.prepare("UPDATE tb_counters SET held = held + ? WHERE scope_key = 'team:eng'").run(usd(3))
        other.close()
        const placed = yield* hold(world.scopes, usd(2))
        expect(placed.amount).toBe(usd(2))
        expect((yield* spendOf(world.team)).held).toBe(usd(2))
      })
    )
  )

  it.scoped("a hold that arrives inside another transaction waits for it and outlives its rollback", () =>
    withStore(() =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
        // The counters exist, so the step below has nothing to make through the client.
        yield* settle(world, yield* hold(world.scopes, usd(1)), Money.zero)
        const sql = yield* SqlClient
        const opened = yield* Deferred.make<void>()
        const finish = yield* Deferred.make<void>()
        const other = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`UPDATE tb_counters SET total = total + 1 WHERE scope_key = 'team:eng'`
              yield* Deferred.succeed(opened, undefined)
              yield* Deferred.await(finish)
              return yield* Effect.fail("roll back")
            })
          )
          .pipe(Effect.exit, Effect.fork)
        yield* Deferred.await(opened)
        const held = yield* Effect.fork(hold(world.scopes, usd(3)))
        // Let the queued step's turn of the event loop come while the transaction is still open.
        yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
        yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
        yield* Deferred.succeed(finish, undefined)
        expect(Exit.isFailure(yield* Fiber.join(other))).toBe(true)
        const placed = yield* Fiber.join(held)
        expect(placed.amount).toBe(usd(3))
        const team = yield* spendOf(world.team)
        expect(team.held).toBe(usd(3))
        expect(team.total).toBe(Money.zero)
      })
    )
  )

  it.scoped("200 holds and settles in flight commit in shared batches with exact totals", () =>
    withStore(() =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 50 }) })
        const before = (yield* Metric.value(groupCommitSteps)).count
        const results = yield* Effect.all(
          Array.from({ length: 200 }, () =>
            Effect.either(Effect.flatMap(hold(world.scopes, usd(1)), (held) => settle(world, held, usd(0.5))))
          ),
          { concurrency: "unbounded" }
        )
        expect((yield* Metric.value(groupCommitSteps)).count - before).toBeGreaterThan(0)
        const settled = results.filter((result) => result._tag === "Right").length
        // Holds of $1 on $50: at most 50 open at once, and each settles at $0.50.
        expect(settled).toBeGreaterThanOrEqual(50)
        const team = yield* spendOf(world.team)
        expect(team.held).toBe(Money.zero)
        expect(team.total).toBe(Money.make(BigInt(settled) * usd(0.5)))
        const logged = yield* (yield* SqlClient)<{
          readonly n: number
        }>`SELECT COUNT(*) AS n FROM tb_spend_logs`
        expect(Number(logged[0]?.n)).toBe(settled)
      })
    )
  )

  it.scoped("a batch writes each counter once, and another connection reads the exact totals", () =>
    withStore((filename) =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 1000 }) })
        yield* Effect.all(
          Array.from({ length: 120 }, () =>
            Effect.flatMap(hold(world.scopes, usd(2)), (held) => settle(world, held, usd(0.25)))
          ),
          { concurrency: "unbounded" }
        )
        const other = new Database(filename, { readonly: true })
        const rows = other
          .prepare("SELECT scope_key, total, held, window_spend FROM tb_counters WHERE scope_key IN (?, ?)")
          .safeIntegers(true)
          .all("team:eng", "global:")
        other.close()
        expect(rows).toEqual(
          ["global:", "team:eng"].map((key) => ({
            scope_key: key,
            total: usd(30),
            held: 0n,
            window_spend: usd(30)
          }))
        )
      })
    )
  )

  it.scoped("a batch that changes more counters than one statement writes keeps every one exact", () =>
    withStore((filename) =>
      Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 1000 }) })
        // 75 end users: each batch changes their counters and the world's, past the 32 of one statement.
        const endUsers = Array.from({ length: 75 }, (_, i) => endUserId(`customer-${i}`))
        const round = (cost: Money.Money) =>
          Effect.all(
            endUsers.map((id) => {
              const scopes: ReadonlyArray<Scope.ScopeRef> = [...world.scopes, { kind: "end_user", id }]
              return Effect.flatMap(hold(scopes, usd(2)), (held) => settle(world, held, cost))
            }),
            { concurrency: "unbounded" }
          )
        yield* round(usd(0.25))
        yield* round(usd(0.5))
        const other = new Database(filename, { readonly: true })
        const rows = other
          .prepare("SELECT scope_key, total, held FROM tb_counters WHERE scope_key LIKE 'end_user:%'")
          .safeIntegers(true)
          .all()
        const team = other
          .prepare("SELECT total, held FROM tb_counters WHERE scope_key = 'team:eng'")
          .safeIntegers(true)
          .get()
        other.close()
        expect(rows).toHaveLength(endUsers.length)
        for (const row of rows) expect(row).toMatchObject({ total: usd(0.75), held: 0n })
        expect(team).toEqual({ total: usd(0.75 * endUsers.length), held: 0n })
      })
    )
  )

  it.scoped(
    "rate-limit steps between ledger steps keep them exact, and a client write after them still binds",
    () =>
      withStore(() =>
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1_000 }) })
          const limiter = yield* RateLimitStore
          const rules = [
            { bucket: "team:eng:requests", kind: "requests" as const, limit: 1_000_000 },
            { bucket: "team:eng:parallel", kind: "parallel" as const, limit: 1_000 }
          ]
          const now = Date.now()
          // 300 requests in flight: each acquires its rate limits, holds, settles and completes.
          yield* Effect.forEach(
            Array.from({ length: 300 }, (_, i) => i),
            (i) =>
              Effect.gen(function* () {
                const ticketId = `ticket-${i}`
                const decision = yield* limiter.acquire({
                  ticketId,
                  rules,
                  tokens: 0,
                  now,
                  leaseMillis: 60_000
                })
                expect(decision._tag).toBe("Admitted")
                const placed = yield* hold(world.scopes, usd(2))
                yield* settle(world, placed, usd(1))
                yield* limiter.complete({ ticketId, rules, tokensDelta: 0, refundRequest: false, now })
              }),
            { concurrency: "unbounded" }
          )
          expect((yield* spendOf(world.team)).total).toBe(usd(300))
          // Every lease was given back: the parallel rule takes its whole limit again.
          const all = yield* limiter.acquire({
            ticketId: "all",
            rules: [{ bucket: "team:eng:parallel", kind: "parallel", limit: 1 }],
            tokens: 0,
            now,
            leaseMillis: 60_000
          })
          expect(all._tag).toBe("Admitted")
          // One row written through the client right after one rate-limit step is still seen:
          // the rate limits' rows are written in the ledger's batches, and only those are trusted.
          yield* settle(world, yield* hold(world.scopes, usd(0.25)), usd(0.25))
          yield* limiter.acquire({ ticketId: "late", rules, tokens: 0, now, leaseMillis: 60_000 })
          const sql = yield* SqlClient
          yield* sql`UPDATE tb_counters SET max_budget = ${usd(300.5)} WHERE scope_key = ${"team:eng"}`
          const refused = yield* Effect.exit(hold(world.scopes, usd(1)))
          expect(Exit.isFailure(refused)).toBe(true)
          expect((yield* hold(world.scopes, usd(0.25))).amount).toBe(usd(0.25))
        })
      )
  )

  describe("how long a step waits for company", () => {
    /**
     * Queues a step, keeps the event loop busy for `gapMillis` in the same turn, then
     * queues a second: the sizes of the batches of two steps or more that committed.
     */
    const twoSteps = (utilization: number, gapMillis: number) =>
      withStore(() =>
        Effect.gen(function* () {
          const shared: Array<number> = []
          const fast = SqliteFastPath.make(yield* SqliteDatabase, yield* SqlClient, {
            batch: true,
            onShared: (steps) => shared.push(steps),
            load: () => utilization
          })
          const first = yield* Effect.fork(fast.run(() => "first"))
          // The forked step runs up to its queueing before this fiber goes on.
          yield* Effect.yieldNow()
          yield* Effect.sync(() => {
            const until = performance.now() + gapMillis
            while (performance.now() < until) {
              // The same turn of the event loop, busy.
            }
          })
          const second = yield* fast.run(() => "second")
          expect([yield* Fiber.join(first), second]).toEqual(["first", "second"])
          return shared
        })
      )

    it.scoped("idle: a step that waited past the limit commits before the next one queues", () =>
      Effect.map(twoSteps(0, 5), (shared) => expect(shared).toEqual([]))
    )

    it.scoped("saturated: steps wait for the end of the turn and share its commit", () =>
      Effect.map(twoSteps(1, 5), (shared) => expect(shared).toEqual([2]))
    )

    it("the limit grows with the load, up to the whole turn", () => {
      expect(CommitWait.limit(0)).toBe(CommitWait.IDLE_WAIT_MILLIS)
      expect(CommitWait.limit(0.5)).toBe(2 * CommitWait.IDLE_WAIT_MILLIS)
      expect(CommitWait.limit(0.9)).toBeCloseTo(10 * CommitWait.IDLE_WAIT_MILLIS)
      expect(CommitWait.limit(0.995)).toBe(Number.POSITIVE_INFINITY)
      // 5 ms of busy loop waits past the limit at any load short of saturation.
      expect(CommitWait.limit(0.9)).toBeLessThan(5)
    })

    it("the event loop's load is read from the loop, and only every sample period", async () => {
      const load = CommitWait.eventLoopLoad()
      const start = performance.now()
      while (performance.now() - start < CommitWait.SAMPLE_MILLIS + 20) {
        // Busy for a whole sample period.
      }
      const sampledAt = performance.now()
      const busy = load(sampledAt)
      expect(busy).toBeGreaterThan(0.9)
      // Within the period the sample stands, however idle the loop since (the time is
      // given, so a slow timer cannot carry it past the period).
      await new Promise((resolve) => setTimeout(resolve, 30))
      expect(load(sampledAt + CommitWait.SAMPLE_MILLIS - 1)).toBe(busy)
      await new Promise((resolve) => setTimeout(resolve, CommitWait.SAMPLE_MILLIS + 20))
      expect(load(performance.now())).toBeLessThan(0.5)
    })
  })

  it.scoped("synchronous: full syncs every commit; the default is NORMAL", () =>
    onFile((filename) =>
      Effect.gen(function* () {
        const level = (options: SqlStore.SqlStoreOptions) =>
          Effect.scoped(
            Effect.flatMap(
              Layer.build(
                SqlStore.layer(options).pipe(Layer.provideMerge(SqlStore.sqliteClient({ filename })))
              ),
              (store) =>
                Effect.provide(
                  Effect.flatMap(
                    SqlClient,
                    (sql) => sql<{ readonly synchronous: number }>`PRAGMA synchronous`
                  ),
                  store
                )
            )
          )
        // SQLite's codes: 1 is NORMAL, 2 is FULL.
        expect(Number((yield* level({}))[0]?.synchronous)).toBe(1)
        expect(Number((yield* level({ synchronous: "full" }))[0]?.synchronous)).toBe(2)
      })
    )
  )
})
