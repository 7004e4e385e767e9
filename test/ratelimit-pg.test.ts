import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it, vi } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, type Duration, Effect, Layer, Redacted } from "effect"
import { SqlStore } from "../src/index.js"
import { RateLimitStore } from "../src/store/RateLimitStore.js"
import { NOW, parallel, requests, runRateLimitConformance } from "./conformance/rateLimits.js"
import { outage, proxyTo, sharedLimits } from "./support/rateLimitScenarios.js"
import { describePg, freshPgStore, pgClient, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"

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

  it.scoped("migration 5 replaces the acquire function of a database migrated before it", () =>
    Effect.gen(function* () {
      const client = yield* Layer.build(pgClient(database.name, yield* schemaIn(database.name)))
      const sql = Context.get(client, SqlClient)
      const migrate = Effect.provide(SqlStore.migrate, client)
      yield* migrate
      // Back to before migration 5: its record and those of later ones gone (the migrator runs
      // only ids above the latest applied), and an acquire that answers a refusal with the
      // refusing rule's remaining only, as the one of migration 2 used to.
      yield* sql`DELETE FROM teambudget_migrations WHERE migration_id >= 5`
      yield* sql.unsafe(`CREATE OR REPLACE FUNCTION tb_rate_acquire(
        p_buckets text[], p_kinds text[], p_limits float8[], p_tokens float8,
        p_now float8, p_lease_millis float8, p_ticket text, p_async boolean
      ) RETURNS float8[] LANGUAGE sql AS $$ SELECT ARRAY[0, 0, 1000, 0]::float8[] $$`)
      expect((yield* migrate)[0]).toEqual([5, "rate_refusal_remaining"])
      const store = yield* Effect.map(
        Layer.build(SqlStore.layer().pipe(Layer.provide(Layer.succeedContext(client)))),
        Context.get(RateLimitStore)
      )
      const rules = [parallel("team:t-5:parallel", 1), requests("team:t-5:requests", 3)]
      yield* store.acquire({ ticketId: "a", rules, tokens: 0, now: NOW, leaseMillis: 60_000 })
      expect(
        yield* store.acquire({ ticketId: "b", rules, tokens: 0, now: NOW, leaseMillis: 60_000 })
      ).toEqual({
        _tag: "Refused",
        index: 0,
        retryAfterMillis: 1_000,
        remaining: [0, 2]
      })
    })
  )

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
