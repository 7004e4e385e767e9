import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Schedule } from "effect"
import { RateLimitStore } from "../src/store/RateLimitStore.js"
import * as MemoryRateLimits from "../src/store/memory/MemoryRateLimits.js"
import { SqlStore } from "../src/index.js"
import { parallel, runRateLimitConformance } from "./conformance/rateLimits.js"

runRateLimitConformance("memory rate limits", () =>
  Layer.sync(RateLimitStore, () => MemoryRateLimits.make(MemoryRateLimits.makeState()))
)

runRateLimitConformance("SQLite rate limits", () => SqlStore.layerSqlite({ filename: ":memory:" }))

describe("SQL rate-limit leases", () => {
  it.live("expired leases are deleted in the background, live ones kept", () =>
    Effect.gen(function* () {
      const store = yield* RateLimitStore
      const sql = yield* SqlClient
      const now = yield* Clock.currentTimeMillis
      const rules = [parallel("key:k:parallel", 5)]
      yield* store.acquire({ ticketId: "lapsed", rules, tokens: 0, now, leaseMillis: 1 })
      yield* store.acquire({ ticketId: "live", rules, tokens: 0, now, leaseMillis: 600_000 })
      const tickets = sql<{ readonly ticket_id: string }>`SELECT ticket_id FROM tb_rate_leases`
      const remaining = yield* Effect.retry(
        Effect.filterOrFail(
          tickets,
          (rows) => rows.length < 2,
          () => "the lapsed lease is still there"
        ),
        Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))
      )
      expect(remaining.map((row) => row.ticket_id)).toEqual(["live"])
    }).pipe(
      Effect.provide(
        SqlStore.layer({ pruneEvery: "10 millis" }).pipe(
          Layer.provideMerge(SqlStore.sqliteClient({ filename: ":memory:" }))
        )
      )
    )
  )
})
