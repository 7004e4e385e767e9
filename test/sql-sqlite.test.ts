/**
 * The SQLite store beyond the conformance suite: concurrency in one process, rows
 * corrupted behind its back, exact int8 money, migrations, persistence in a file,
 * and picking a store from a URL.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option } from "effect"
import { SpendLedger, SqlStore, TeamRepo } from "../src/index.js"
import { hold, makeWorld, settle } from "./conformance/fixtures.js"
import { limits, teamId, usd } from "./support/fixtures.js"
import {
  bigMoney,
  concurrentAuthorizeSettle,
  concurrentTeamBudget,
  corruptRows,
  migrateTwice,
  policyOver,
  refusalMakesNoCounter
} from "./support/sqlScenarios.js"

const dir = mkdtempSync(join(tmpdir(), "teambudget-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A store and a raw client on one fresh in-memory database (one connection). */
const fresh = () => {
  const client = SqlStore.sqliteClient({ filename: ":memory:" })
  return SqlStore.layer().pipe(Layer.provideMerge(client))
}

describe("SQLite store", () => {
  it.scoped("400 concurrent hold+settle against a team budget that fits 25 admit exactly 25", () =>
    Effect.gen(function* () {
      const store = yield* Layer.build(fresh())
      yield* concurrentTeamBudget([store], 400)
    })
  )

  it.scoped(
    "400 concurrent authorize+settle in one process against a team budget that fits 25: 25 admitted",
    () =>
      Effect.gen(function* () {
        const instance = yield* Layer.build(policyOver(SqlStore.layer()).pipe(Layer.provideMerge(fresh())))
        yield* concurrentAuthorizeSettle([instance], 400)
      })
  )

  it.effect("a corrupt row fails only its owner's requests, with CorruptRecord", () =>
    Effect.gen(function* () {
      const raw = yield* SqlClient
      yield* corruptRows(raw)
    }).pipe(
      Effect.provide(
        policyOver(SqlStore.layer()).pipe(Layer.provideMerge(SqlStore.sqliteClient({ filename: ":memory:" })))
      )
    )
  )

  it.effect("money beyond 2^53 nano-dollars round-trips exactly", () =>
    bigMoney.pipe(Effect.provide(SqlStore.layerSqlite({ filename: ":memory:" })))
  )

  it.effect("a refused hold writes nothing, not even a counter of a scope never seen", () =>
    Effect.gen(function* () {
      yield* refusalMakesNoCounter(yield* SqlClient)
    }).pipe(Effect.provide(fresh()))
  )

  it.effect("migrations run twice apply nothing the second time", () =>
    Effect.gen(function* () {
      yield* migrateTwice(yield* SqlClient)
    }).pipe(Effect.provide(fresh()))
  )

  it.effect("a failing migration is a StoreUnavailable naming it, and the store does not start", () =>
    Effect.gen(function* () {
      const raw = yield* SqlClient
      // Something in the way: a view where the migration makes a table and then indexes it.
      yield* raw`CREATE VIEW tb_keys AS SELECT 1 AS team_id, 1 AS user_id`
      const exit = yield* Effect.exit(Layer.build(SqlStore.layer()).pipe(Effect.scoped))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const message = JSON.stringify(exit.cause)
        expect(message).toContain("StoreUnavailable")
        expect(message).toContain("1_initial")
      }
      // Nothing of the failed run was kept.
      const tables = yield* raw<{
        readonly name: string
      }>`SELECT name FROM sqlite_master WHERE name = 'tb_teams'`
      expect(tables).toEqual([])
    }).pipe(Effect.provide(SqlStore.sqliteClient({ filename: ":memory:" })))
  )

  it.effect("a file database keeps budgets and spend across restarts", () =>
    Effect.gen(function* () {
      const filename = join(dir, "nested", "budget.db")
      const store = () => SqlStore.layerSqlite({ filename })
      yield* Effect.gen(function* () {
        const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
        yield* settle(world, yield* hold(world.scopes, usd(2)), usd(1.5))
      }).pipe(Effect.provide(store()))
      const again = yield* Effect.gen(function* () {
        const team = yield* Effect.flatMap(TeamRepo, (t) => t.find(teamId("eng")))
        const spend = yield* Effect.flatMap(SpendLedger, (l) =>
          l.spendOf({ kind: "team", id: teamId("eng") })
        )
        return { max: Option.flatMap(team, (t) => t.limits.maxBudget), total: spend.total, held: spend.held }
      }).pipe(Effect.provide(store()))
      expect(again).toEqual({ max: Option.some(usd(10)), total: usd(1.5), held: 0n })
    })
  )

  it.effect("layerFromUrl picks the store by scheme and never echoes the URL", () =>
    Effect.gen(function* () {
      const viaSqlite = yield* Effect.flatMap(TeamRepo, (t) => t.list()).pipe(
        Effect.provide(SqlStore.layerFromUrl(`sqlite:${join(dir, "from-url.db")}`))
      )
      expect(viaSqlite).toEqual([])
      const viaMemory = yield* Effect.flatMap(TeamRepo, (t) => t.list()).pipe(
        Effect.provide(SqlStore.layerFromUrl("memory:"))
      )
      expect(viaMemory).toEqual([])
      const exit = yield* Effect.exit(
        Effect.flatMap(TeamRepo, (t) => t.list()).pipe(
          Effect.provide(SqlStore.layerFromUrl("mysql://root:hunter2@db/x"))
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const text = JSON.stringify(exit)
      expect(text).toContain("mysql:")
      expect(text).not.toContain("hunter2")
    })
  )
})
