import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect, Exit, type Layer } from "effect"
import {
  MemoryStore,
  type Money,
  Scope,
  SpendLogRepo,
  SqlStore,
  type StoreServices,
  TeamRepo
} from "../src/index.js"
import * as MemoryLedger from "../src/store/memory/MemoryLedger.js"
import * as MemoryState from "../src/store/memory/MemoryState.js"
import * as MemoryTeamRepo from "../src/store/memory/MemoryTeamRepo.js"
import {
  endUserId,
  failure,
  hold,
  holdRequest,
  makeWorld,
  settle,
  spendOf,
  type World
} from "./conformance/fixtures.js"
import { runStoreConformance } from "./conformance/storeSuite.js"
import { limits, makeTeam, teamId, usd } from "./support/fixtures.js"

runStoreConformance("memory store", () => MemoryStore.layer())

/** Holds $1 on the world's scopes and settles it for `cost`, `count` times; the holds, oldest first. */
const settledHolds = (world: World, count: number, cost: Money.Money) =>
  Effect.forEach(Array.from({ length: count }), () =>
    Effect.tap(hold(world.scopes, usd(1)), (held) => settle(world, held, cost))
  )

describe("memory store options", () => {
  it.effect("holdTtl sets when holds expire", () =>
    Effect.gen(function* () {
      const world = yield* makeWorld()
      const held = yield* hold(world.scopes, usd(1))
      expect(DateTime.toEpochMillis(held.expiresAt)).toBe((yield* Clock.currentTimeMillis) + 60_000)
    }).pipe(Effect.provide(MemoryStore.layer({ holdTtl: "1 minute" })))
  )

  it.effect("spendLogCapacity keeps only the newest rows", () =>
    Effect.gen(function* () {
      const world = yield* makeWorld()
      const ids = (yield* settledHolds(world, 10, usd(0.5))).map((held) => held.holdId)
      const rows = yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))
      expect(rows.map((row) => row.requestId)).toEqual(ids.slice(-3).reverse())
      // The counters keep everything: only the log is trimmed.
      expect((yield* spendOf(world.team)).total).toBe(usd(5))
    }).pipe(Effect.provide(MemoryStore.layer({ spendLogCapacity: 3 })))
  )

  it.effect(
    "spendLogCapacity bounds the closed-hold markers too: the newest still refuse a second settle",
    () =>
      Effect.gen(function* () {
        const world = yield* makeWorld()
        const held = yield* settledHolds(world, 6, usd(0.5))
        const [oldest] = held
        const newest = held.at(-1)
        if (oldest === undefined || newest === undefined) throw new Error("no holds")
        // The newest three closures are remembered: a second settle is refused and charges nothing.
        expect((yield* failure(settle(world, newest, usd(0.5)), "HoldClosed")).state).toBe("settled")
        expect((yield* spendOf(world.team)).total).toBe(usd(3))
        // Older ones are forgotten, as after four TTLs: settled again, the hold counts as a late settlement.
        expect((yield* settle(world, oldest, usd(0.5))).late).toBe(true)
      }).pipe(Effect.provide(MemoryStore.layer({ spendLogCapacity: 3 })))
  )
})

/** Settles `count` requests of one world on `store`; returns how many log rows are kept and the team's spend. */
const settleMany = (store: Layer.Layer<StoreServices, unknown>, count: number) =>
  Effect.gen(function* () {
    const world = yield* makeWorld()
    yield* settledHolds(world, count, usd(0.001))
    const rows = yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({ limit: count }))
    const spend = yield* spendOf(world.team)
    return { rows: rows.length, spend: spend.total }
  }).pipe(Effect.provide(store))

describe("memory store opened by URL", () => {
  it.effect("memory:?spend_log_capacity=N keeps the newest N rows; the counters keep everything", () =>
    Effect.gen(function* () {
      const kept = yield* settleMany(SqlStore.layerFromUrl("memory:?spend_log_capacity=4"), 9)
      expect(kept).toEqual({ rows: 4, spend: usd(0.009) })
    })
  )

  it.effect(
    "memory: alone keeps a bounded log, so a long-running process does not grow without end",
    () =>
      Effect.gen(function* () {
        const count = SqlStore.MEMORY_URL_SPEND_LOG_CAPACITY + 5
        const kept = yield* settleMany(SqlStore.layerFromUrl("memory:"), count)
        expect(kept.rows).toBe(SqlStore.MEMORY_URL_SPEND_LOG_CAPACITY)
        expect(kept.spend).toBe(usd(0.001 * count))
      }),
    60_000
  )

  it.effect("a memory URL of any other form is refused with the form it accepts", () =>
    Effect.gen(function* () {
      for (const url of [
        "memory:?spend_log_capacity=0",
        "memory:?spend_log_capacity=-3",
        "memory:?spend_log_capacity=1.5",
        "memory:?spend_log_capacity=",
        "memory:?spend_log_capacity=1000000000",
        "memory:?capacity=10",
        "memory:extra"
      ]) {
        const exit = yield* Effect.exit(
          Effect.flatMap(SpendLogRepo, (logs) => logs.query({})).pipe(
            Effect.provide(SqlStore.layerFromUrl(url))
          )
        )
        expect(Exit.isFailure(exit), url).toBe(true)
        expect(JSON.stringify(exit), url).toContain("memory:?spend_log_capacity=N")
      }
    })
  )
})

describe("memory ledger", () => {
  it.effect("a refused hold keeps no counter of a scope it is the first to name; an admitted one does", () =>
    Effect.gen(function* () {
      const state = MemoryState.make(900_000, Number.POSITIVE_INFINITY)
      const ledger = MemoryLedger.make(state)
      yield* Effect.provideService(
        makeTeam("eng", limits({ maxBudget: 1 })),
        TeamRepo,
        MemoryTeamRepo.make(state)
      )
      const stranger: Scope.ScopeRef = { kind: "end_user", id: endUserId("first-seen") }
      const scopes: ReadonlyArray<Scope.ScopeRef> = [stranger, { kind: "team", id: teamId("eng") }]
      const before = [...state.counters.keys()]
      yield* failure(ledger.hold(holdRequest(scopes, usd(2))), "BudgetExceeded")
      expect([...state.counters.keys()]).toEqual(before)
      yield* ledger.hold(holdRequest(scopes, usd(0.5)))
      expect(state.counters.get(Scope.key(stranger))?.held).toBe(usd(0.5))
    })
  )
})
