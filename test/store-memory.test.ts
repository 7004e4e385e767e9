import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect } from "effect"
import { MemoryStore, SpendLedger, SpendLogRepo } from "../src/index.js"
import { hold, makeWorld, settle } from "./conformance/fixtures.js"
import { runStoreConformance } from "./conformance/storeSuite.js"
import { usd } from "./support/fixtures.js"

runStoreConformance("memory store", () => MemoryStore.layer())

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
      const ids = []
      for (let i = 0; i < 10; i++) {
        const held = yield* hold(world.scopes, usd(1))
        yield* settle(world, held, usd(0.5))
        ids.push(held.holdId)
      }
      const rows = yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))
      expect(rows.map((row) => row.requestId)).toEqual(ids.slice(-3).reverse())
      // The counters keep everything: only the log is trimmed.
      expect((yield* Effect.flatMap(SpendLedger, (l) => l.spendOf(world.team))).total).toBe(usd(5))
    }).pipe(Effect.provide(MemoryStore.layer({ spendLogCapacity: 3 })))
  )
})
