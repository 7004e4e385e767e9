/**
 * PostgreSQL for tests: a fresh database per test file (a random name on the shared
 * server at 127.0.0.1:5432, user postgres), dropped with `WITH (FORCE)` afterwards,
 * and a fresh schema per store layer inside it (creating a schema is much cheaper
 * than creating a database).
 *
 * When the server cannot be reached, suites declared with `describePg` are skipped
 * with a printed reason, except on CI (`CI` set), where that is a failure.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlClient } from "@effect/sql/SqlClient"
import { afterAll, beforeAll, describe } from "@effect/vitest"
import { Effect, Layer, Redacted, type Scope } from "effect"
import { SqlStore, type StoreServices } from "../../src/index.js"
import { reachable } from "./reachable.js"

export const PG_HOST = "127.0.0.1"
export const PG_PORT = 5432

/** Whether the shared PostgreSQL server answers. */
export const pgAvailable: boolean = await reachable(PG_HOST, PG_PORT)

if (!pgAvailable && process.env["CI"] !== undefined) {
  throw new Error(
    `PostgreSQL is not reachable at ${PG_HOST}:${PG_PORT}, and CI requires the PostgreSQL suites.`
  )
}

/** A `describe` that is skipped, with a printed reason, when PostgreSQL is not reachable. */
export const describePg = (name: string, body: () => void): void => {
  if (!pgAvailable) {
    console.warn(`Skipping "${name}": PostgreSQL is not reachable at ${PG_HOST}:${PG_PORT}.`)
  }
  describe.skipIf(!pgAvailable)(name, body)
}

const randomName = (prefix: string) => `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`

/** A URL for `database` on the test server (or a proxy's port), optionally with a default schema. */
export const pgUrl = (database: string, schema?: string, port: number = PG_PORT): string =>
  `postgres://postgres@${PG_HOST}:${port}/${database}` +
  (schema === undefined ? "" : `?options=${encodeURIComponent(`-c search_path=${schema}`)}`)

/** A plain client on `database` (no store), for set-up and raw SQL. */
export const pgClient = (
  database: string,
  schema?: string
): Layer.Layer<PgClient.PgClient | SqlClient, unknown> =>
  PgClient.layer({ url: Redacted.make(pgUrl(database, schema)), maxConnections: 2 })

const admin = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(pgClient("postgres"))))
  )

/**
 * Registers a fresh database for the enclosing `describe`: made before its tests,
 * dropped (with any connection still open) after them. Read `name` inside tests.
 */
export const useDatabase = (): { name: string } => {
  const database = { name: "" }
  beforeAll(async () => {
    const name = randomName("tb_test")
    await admin((sql) => sql`CREATE DATABASE ${sql(name)}`)
    // A throwaway database need not wait for the disk at every commit; locking and
    // visibility are unchanged, only durability across a server crash.
    await admin((sql) => sql`ALTER DATABASE ${sql(name)} SET synchronous_commit = off`)
    database.name = name
  })
  afterAll(async () => {
    if (database.name === "") return
    await admin((sql) => sql`DROP DATABASE IF EXISTS ${sql(database.name)} WITH (FORCE)`)
  })
  return database
}

/** A fresh, empty schema in `database` for as long as the scope lives; returns its name. */
export const schemaIn = (database: string): Effect.Effect<string, unknown, Scope.Scope> => {
  const schema = randomName("s")
  const run = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
    Effect.scoped(Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(pgClient(database))))
  return Effect.as(
    Effect.acquireRelease(
      run((sql) => sql`CREATE SCHEMA ${sql(schema)}`),
      () => Effect.orDie(run((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
    ),
    schema
  )
}

/**
 * A fresh, empty schema in `database` for as long as the layer lives, and a client
 * whose connections use it.
 */
export const freshSchema = (
  database: string,
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient, unknown> =>
  Layer.unwrapScoped(
    Effect.map(schemaIn(database), (schema) =>
      PgClient.layer({
        url: Redacted.make(pgUrl(database, schema)),
        maxConnections: options.maxConnections ?? 8
      })
    )
  )

/** A fresh PostgreSQL store (new schema) in `database`, with `options`. */
export const freshPgStore = (
  database: string,
  options: SqlStore.SqlStoreOptions & { readonly maxConnections?: number } = {}
): Layer.Layer<StoreServices, unknown> =>
  SqlStore.layer(options).pipe(Layer.provide(freshSchema(database, options)))
