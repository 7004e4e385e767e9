/**
 * Group commit on both SQL stores: holds and settles that wait at the same moment share
 * one transaction, and each still comes out as it would alone. Hundreds in flight over
 * two PostgreSQL pools (and one SQLite file) admit exactly what fits, refuse the rest
 * one by one, leave nothing held, and log every cent; a corrupt counter inside a batch
 * fails only its owner's steps.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, Either, Layer, Metric, Redacted } from "effect"
import { Money, SpendLedger, SpendLogRepo, SqlStore, type StoreServices } from "../src/index.js"
import { groupCommitSteps } from "../src/store/sql/SqlLedger.js"
import { holdRequest, logDraft } from "./conformance/fixtures.js"
import { limits, teamId, usd } from "./support/fixtures.js"
import { describePg, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"
import { makeTeamOf, type Member } from "./support/sqlScenarios.js"

const batchedSteps = Effect.map(Metric.value(groupCommitSteps), (state) => state.count)

const names = Array.from({ length: 8 }, (_, i) => `member${i}`)

/**
 * 300 strict holds of $1 in flight at once on a $40 team budget, spread over
 * `instances`: exactly 40 are held and 260 refused, each refusal on its own; then
 * every held one settles at $0.75 at once. Nothing stays held, and the team's spend
 * is exactly the sum of the spend log.
 */
const holdAllThenSettle = (instances: ReadonlyArray<Context.Context<StoreServices>>) =>
  Effect.gen(function* () {
    const first = instances[0]
    if (first === undefined) return yield* Effect.dieMessage("no store instance")
    const members = yield* Effect.provide(makeTeamOf(names, limits({ maxBudget: 40 })), first)
    const on = <A, E>(i: number, effect: Effect.Effect<A, E, SpendLedger>) => {
      const instance = instances[i % instances.length]
      return instance === undefined ? Effect.dieMessage("no instance") : Effect.provide(effect, instance)
    }
    const memberOf = (i: number): Member | undefined => members[i % members.length]
    const before = yield* batchedSteps
    const holds = yield* Effect.all(
      Array.from({ length: 300 }, (_, i) => {
        const member = memberOf(i)
        if (member === undefined) return Effect.dieMessage("no member")
        return on(
          i,
          Effect.flatMap(SpendLedger, (ledger) =>
            Effect.either(ledger.hold(holdRequest(member.world.scopes, usd(1))))
          )
        ).pipe(Effect.map((result) => ({ i, member, result })))
      }),
      { concurrency: "unbounded" }
    )
    const held = holds.flatMap(({ i, member, result }) =>
      Either.isRight(result) ? [{ i, member, hold: result.right }] : []
    )
    const refused = holds.flatMap(({ result }) => (Either.isLeft(result) ? [result.left] : []))
    expect(held.length).toBe(40)
    expect(refused.length).toBe(260)
    for (const error of refused) {
      expect(error._tag).toBe("BudgetExceeded")
      if (error._tag === "BudgetExceeded") {
        expect(error.scope).toBe("team")
        expect(error.spend + error.held + error.requested > error.maxBudget).toBe(true)
      }
    }
    yield* Effect.all(
      held.map(({ hold, i, member }) =>
        on(
          i,
          Effect.flatMap(SpendLedger, (ledger) =>
            ledger.settle(hold, usd(0.75), logDraft(member.world, hold, hold.expiresAt))
          )
        )
      ),
      { concurrency: "unbounded" }
    )
    // The steps really did share transactions.
    expect((yield* batchedSteps) - before).toBeGreaterThan(0)
    const check = Effect.gen(function* () {
      const ledger = yield* SpendLedger
      const team = yield* ledger.spendOf({ kind: "team", id: teamId("pool") })
      const logs = yield* Effect.flatMap(SpendLogRepo, (repo) => repo.query({ limit: 100_000 }))
      expect(team.total).toBe(usd(30))
      expect(team.held).toBe(0n)
      expect(logs.length).toBe(40)
      expect(logs.reduce((sum, row) => Money.add(sum, row.cost), Money.zero)).toBe(usd(30))
      for (const member of members) {
        for (const scope of member.world.scopes) expect((yield* ledger.spendOf(scope)).held).toBe(0n)
      }
    })
    for (const instance of instances) yield* Effect.provide(check, instance)
  })

/**
 * One member's counter corrupted behind the store's back: in 200 concurrent hold+settle
 * over every member, that member's steps fail with `CorruptRecord` and every other
 * one is charged exactly.
 */
const corruptInBatch = (instance: Context.Context<StoreServices | SqlClient.SqlClient>) =>
  Effect.gen(function* () {
    const members = yield* makeTeamOf(names, limits({ maxBudget: 1_000 }))
    const ledger = yield* SpendLedger
    const round = (member: Member) =>
      Effect.flatMap(ledger.hold(holdRequest(member.world.scopes, usd(1))), (hold) =>
        ledger.settle(hold, usd(1), logDraft(member.world, hold, hold.expiresAt))
      )
    // Every counter exists before the row is spoiled.
    for (const member of members) yield* round(member)
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE tb_counters SET held = -5 WHERE scope_key LIKE 'user:member3%'`
    const results = yield* Effect.all(
      Array.from({ length: 200 }, (_, i) => {
        const member = members[i % members.length]
        if (member === undefined) return Effect.dieMessage("no member")
        return Effect.map(Effect.either(round(member)), (result) => ({ member, result }))
      }),
      { concurrency: "unbounded" }
    )
    for (const { member, result } of results) {
      if (member.name === "member3") {
        expect(Either.isLeft(result) && result.left._tag).toBe("CorruptRecord")
      } else {
        expect(Either.isRight(result)).toBe(true)
      }
    }
    const team = yield* ledger.spendOf({ kind: "team", id: teamId("pool") })
    // 8 warm-up rounds, then 25 rounds for each of the 7 healthy members.
    expect(team.total).toBe(usd(8 + 7 * 25))
    expect(team.held).toBe(0n)
  }).pipe(Effect.provide(instance))

describePg("group commit on PostgreSQL", () => {
  const database = useDatabase()

  const storeOn = (url: string) =>
    Layer.build(
      SqlStore.layer().pipe(
        Layer.provideMerge(SqlStore.pgClient({ url: Redacted.make(url), maxConnections: 4 }))
      )
    )

  it.scoped("300 holds in flight over two pools, then their settles: exact totals, nothing held", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      yield* holdAllThenSettle([yield* storeOn(url), yield* storeOn(url)])
    })
  )

  it.scoped("a corrupt counter inside a batch fails only its owner's steps", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      yield* corruptInBatch(yield* storeOn(url))
    })
  )
})

describe("group commit on SQLite", () => {
  const onFile = <A, E>(body: (filename: string) => Effect.Effect<A, E, never>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "teambudget-group-"))),
      (dir) => body(join(dir, "store.db")),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )

  const storeOn = (filename: string) =>
    Layer.build(SqlStore.layer().pipe(Layer.provideMerge(SqlStore.sqliteClient({ filename }))))

  it.scoped("300 holds in flight, then their settles: exact totals, nothing held", () =>
    onFile((filename) =>
      Effect.scoped(Effect.flatMap(storeOn(filename), (store) => holdAllThenSettle([store])))
    )
  )

  it.scoped("a corrupt counter inside a batch fails only its owner's steps", () =>
    onFile((filename) => Effect.scoped(Effect.flatMap(storeOn(filename), corruptInBatch)))
  )
})
