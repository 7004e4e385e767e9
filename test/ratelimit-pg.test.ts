import { describe, it, vi } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, type Duration, Effect, Layer, Redacted } from "effect"
import { SqlStore } from "../src/index.js"
import { RateLimitStore } from "../src/store/RateLimitStore.js"
import { runRateLimitConformance } from "./conformance/rateLimits.js"
import { outage, proxyTo, sharedLimits } from "./support/rateLimitScenarios.js"
import { describePg, freshPgStore, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"

vi.setConfig({ testTimeout: 60_000 })

describePg("PostgreSQL rate limits", () => {
  const database = useDatabase()
  runRateLimitConformance("conformance", () => freshPgStore(database.name))

  /** A store on its own pool of `maxConnections`, in `schema`, reached through `port`. */
  const instance = (schema: string, options: { port?: number; timeout?: Duration.DurationInput } = {}) =>
    Layer.build(
      SqlStore.layer(options.timeout === undefined ? {} : { timeout: options.timeout }).pipe(
        Layer.provide(
          PgClient.layer({
            url: Redacted.make(pgUrl(database.name, schema, options.port)),
            maxConnections: 8
          })
        )
      )
    ).pipe(Effect.map(Context.get(RateLimitStore)))

  describe("two instances, two pools, one database", () => {
    sharedLimits(() =>
      Effect.gen(function* () {
        const schema = yield* schemaIn(database.name)
        // The first instance migrates the schema; the second finds it current.
        const first = yield* instance(schema)
        const second = yield* instance(schema)
        return [first, second] as const
      })
    )
  })

  it.live("fails with StoreUnavailable while the database is unreachable, then recovers", () =>
    Effect.gen(function* () {
      const proxy = yield* proxyTo(5432)
      const schema = yield* schemaIn(database.name)
      // Migrate directly, so the store behind the proxy starts on a current schema.
      yield* Effect.scoped(instance(schema))
      // The pool reconnects by itself once the database answers again.
      const store = yield* instance(schema, { port: proxy.port, timeout: "2 seconds" })
      yield* outage(store, proxy, "rate limits: acquire")
    }).pipe(Effect.scoped)
  )
})
