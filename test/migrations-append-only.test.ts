/**
 * Released migrations never change. A database migrated by an earlier release runs
 * only the migrations it lacks, so an edit to a released migration would give old and
 * new databases different schemas, and nothing else would notice.
 *
 * For every migration, in order, the schema after applying the migrations up to and
 * including it on a fresh database is reduced to a digest (sha256 of a canonical,
 * sorted dump) and compared with the one recorded in `fixtures/migration-schemas.json`,
 * on SQLite and on PostgreSQL. A new migration is one new line there per dialect; the
 * failure message gives it. Upgrading from the schema of any migration ends in the
 * schema of a fresh install.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { SqlStore } from "../src/index.js"
import * as Dialect from "../src/store/sql/Dialect.js"
import { migrate, migrations, MIGRATIONS_TABLE } from "../src/store/sql/Migrations.js"
import { describePg, freshSchema, useDatabase } from "./support/postgres.js"

const FIXTURE_PATH = "test/fixtures/migration-schemas.json"

type DialectName = "sqlite" | "postgres"

const Digests = Schema.Record({ key: Schema.String, value: Schema.String })
const Fixture = Schema.parseJson(
  Schema.Struct({ postgres_server: Schema.String, sqlite: Digests, postgres: Digests })
)

const recorded = Schema.decodeUnknownSync(Fixture)(
  readFileSync(new URL("./fixtures/migration-schemas.json", import.meta.url), "utf8")
)

/** Every migration id, in the order the migrator applies them. */
const ids = Object.keys(migrations).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))

/** The ids up to and including `id`. */
const upTo = (id: string): ReadonlyArray<string> => ids.slice(0, ids.indexOf(id) + 1)

/**
 * Applies only the migrations `subset` names, as `migrate` applies them all (same
 * table, same preparation, one transaction): the schema a release that shipped just
 * those would have left behind.
 */
const migrateOnly = (subset: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const record = Object.fromEntries(Object.entries(migrations).filter(([id]) => subset.includes(id)))
    return yield* sql.withTransaction(
      Effect.zipRight(
        Dialect.prepareMigrations(sql, MIGRATIONS_TABLE),
        Migrator.make({})({ loader: Migrator.fromRecord(record), table: MIGRATIONS_TABLE })
      )
    )
  })

// Whitespace is layout, not schema: re-indenting a statement changes nothing stored.
const squeeze = (text: string): string => text.replace(/\s+/g, " ").trim()

/**
 * The schema SQLite holds, one line per object of `sqlite_master`, sorted. The
 * migrator's own table is left out: its shape belongs to `@effect/sql`, not to a
 * migration.
 */
const sqliteSchema = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ type: string; name: string; tbl_name: string; sql: string | null }>`
      SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name <> ${MIGRATIONS_TABLE}`,
    (rows) =>
      rows
        .map((row) =>
          JSON.stringify(["sqlite_master", row.type, row.name, row.tbl_name, squeeze(row.sql ?? "")])
        )
        .sort()
  )

/**
 * The schema of the current PostgreSQL schema, one line per relation, column,
 * constraint, index, sequence, function, trigger and type, sorted. Names qualified
 * with the (random) schema name read `<schema>`, so two runs compare equal. NOT NULL
 * constraints, which newer servers also list as constraints, are read from the
 * columns only.
 */
const pgSchema = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const [{ schema } = { schema: "" }] = yield* sql<{ schema: string }>`SELECT current_schema() AS schema`
    const skip = MIGRATIONS_TABLE
    const parts: ReadonlyArray<readonly [string, ReadonlyArray<Record<string, unknown>>]> = [
      [
        "relation",
        yield* sql`
          SELECT c.relname, c.relkind::text, c.relpersistence::text, c.reloptions::text, c.relrowsecurity
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
            AND c.relname <> ${skip}`
      ],
      [
        "view",
        yield* sql`
          SELECT c.relname, pg_get_viewdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm')`
      ],
      [
        "column",
        yield* sql`
          SELECT c.relname, a.attname,
            row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)::int AS position,
            format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
            pg_get_expr(d.adbin, d.adrelid) AS default_value,
            a.attidentity::text, a.attgenerated::text, co.collname
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
            AND co.collname <> 'default'
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
            AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> ${skip}`
      ],
      [
        "constraint",
        yield* sql`
          SELECT coalesce(c.relname, t.typname) AS owner, k.conname, k.contype::text,
            pg_get_constraintdef(k.oid) AS definition
          FROM pg_constraint k
          JOIN pg_namespace n ON n.oid = k.connamespace
          LEFT JOIN pg_class c ON c.oid = k.conrelid
          LEFT JOIN pg_type t ON t.oid = k.contypid
          WHERE n.nspname = current_schema() AND k.contype::text <> 'n'
            AND coalesce(c.relname, '') <> ${skip}`
      ],
      [
        "index",
        yield* sql`
          SELECT tablename, indexname, indexdef FROM pg_indexes
          WHERE schemaname = current_schema() AND tablename <> ${skip}`
      ],
      [
        "sequence",
        yield* sql`
          SELECT sequencename, data_type::text, start_value::text, min_value::text, max_value::text,
            increment_by::text, cycle, cache_size::text
          FROM pg_sequences WHERE schemaname = current_schema()`
      ],
      [
        "function",
        yield* sql`
          SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments,
            pg_get_functiondef(p.oid) AS definition
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')`
      ],
      [
        "trigger",
        yield* sql`
          SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) AS definition
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND NOT t.tgisinternal`
      ],
      [
        "type",
        yield* sql`
          SELECT t.typname, t.typtype::text, format_type(t.typbasetype, t.typtypmod) AS base,
            t.typnotnull, t.typdefault,
            (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'r', 'm')`
      ]
    ]
    const qualified = new RegExp(`"?\\b${schema}\\b"?`, "g")
    const canonical = (value: unknown): unknown =>
      typeof value === "string" ? squeeze(value.replace(qualified, "<schema>")) : value
    return parts
      .flatMap(([kind, rows]) =>
        rows.map((row) => JSON.stringify([kind, ...Object.values(row).map(canonical)]))
      )
      .sort()
  })

const schemaOf = (dialect: DialectName) =>
  Effect.flatMap(SqlClient.SqlClient, dialect === "sqlite" ? sqliteSchema : pgSchema)

const digestOf = (lines: ReadonlyArray<string>): string =>
  createHash("sha256").update(lines.join("\n")).digest("hex")

/**
 * What differs from the fixture, as messages that say what to do: the first migration
 * whose digest differs is the one that changed (every later digest then differs too).
 */
const problems = (dialect: DialectName, digests: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const expected = recorded[dialect]
  const found: Array<string> = []
  const changed = digests.find(([id, digest]) => expected[id] !== undefined && expected[id] !== digest)
  if (changed !== undefined) {
    const [id, digest] = changed
    found.push(
      `Migration ${id} has changed: on ${dialect}, the schema after applying the migrations up to and ` +
        `including it has digest ${digest}, but ${FIXTURE_PATH} records ${expected[id]} for the released ` +
        `migration. Released migrations are append-only: a database migrated by an earlier release never ` +
        `runs ${id} again, so it would keep the old schema. Restore ${id} as it was released (if it builds ` +
        `its SQL from shared text, such as a function body, keep the released text for it) and add a new ` +
        `migration that makes the change instead.`
    )
  }
  for (const id of Object.keys(expected)) {
    if (!ids.includes(id)) {
      found.push(
        `Migration ${id} is recorded in ${FIXTURE_PATH} but is missing from src/store/sql/Migrations.ts. ` +
          `Released migrations are append-only: restore it (with its id and name) and add a new migration instead.`
      )
    }
  }
  for (const [id, digest] of digests) {
    if (expected[id] === undefined) {
      found.push(
        `Migration ${id} has no recorded schema digest on ${dialect}. If it is new, record it by adding ` +
          `this line to "${dialect}" in ${FIXTURE_PATH}:\n    "${id}": "${digest}"`
      )
    }
  }
  return found
}

/** The schema digest after each migration, each on a database of its own. */
const digestsAfterEach = <E>(dialect: DialectName, fresh: Layer.Layer<SqlClient.SqlClient, E>) =>
  Effect.forEach(ids, (id) =>
    Effect.gen(function* () {
      yield* migrateOnly(upTo(id))
      return [id, digestOf(yield* schemaOf(dialect))] as const
    }).pipe(Effect.provide(fresh))
  )

const expectRecorded = <E>(dialect: DialectName, fresh: Layer.Layer<SqlClient.SqlClient, E>) =>
  Effect.gen(function* () {
    const found = problems(dialect, yield* digestsAfterEach(dialect, fresh))
    if (found.length > 0) assert.fail(found.join("\n\n"))
  })

/**
 * An upgrade from the schema of each migration (`migrate` applying the rest) ends in
 * exactly the schema of a fresh install.
 */
const expectUpgradesMatch = <E>(dialect: DialectName, fresh: Layer.Layer<SqlClient.SqlClient, E>) =>
  Effect.gen(function* () {
    const installed = yield* Effect.zipRight(migrate, schemaOf(dialect)).pipe(Effect.provide(fresh))
    // The digests above are taken through `migrateOnly`; it must agree with `migrate`.
    const everyOne = yield* Effect.zipRight(migrateOnly(ids), schemaOf(dialect)).pipe(Effect.provide(fresh))
    expect(everyOne, `on ${dialect}, applying every migration differs from migrate`).toEqual(installed)
    for (const id of ids.slice(0, -1)) {
      const released = upTo(id)
      const upgraded = yield* Effect.gen(function* () {
        yield* migrateOnly(released)
        const applied = yield* migrate
        expect(
          applied.map(([n, name]) => `${n}_${name}`),
          `on ${dialect}, migrate after ${id} applies exactly the migrations after it`
        ).toEqual(ids.slice(released.length))
        return yield* schemaOf(dialect)
      }).pipe(Effect.provide(fresh))
      expect(
        upgraded,
        `on ${dialect}, upgrading a database migrated up to ${id} differs from a fresh install`
      ).toEqual(installed)
    }
  })

describe("released migrations on SQLite", () => {
  const fresh = SqlStore.sqliteClient({ filename: ":memory:" })

  it.effect("each migration leaves the schema recorded when it was released", () =>
    expectRecorded("sqlite", fresh)
  )

  it.effect("upgrading from any migration gives the schema of a fresh install", () =>
    expectUpgradesMatch("sqlite", fresh)
  )
})

/** The server's major version, as `postgres_server` in the fixture records it. */
const serverMajor = Effect.map(
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ num: string }>`SELECT current_setting('server_version_num') AS num`
  ),
  ([row]) => String(Math.floor(Number(row?.num ?? 0) / 10_000))
)

describePg("released migrations on PostgreSQL", () => {
  const database = useDatabase()
  const fresh = Layer.suspend(() => freshSchema(database.name, { maxConnections: 2 }))

  // Servers of another major version print the same schema differently (defaults, function texts).
  it.effect("each migration leaves the schema recorded when it was released", (context) =>
    Effect.gen(function* () {
      const server = yield* serverMajor.pipe(Effect.provide(fresh))
      if (server !== recorded.postgres_server) {
        console.log(
          `Recorded PostgreSQL schema digests skipped: they were recorded on PostgreSQL ` +
            `${recorded.postgres_server}, this server is ${server}. The upgrade test still runs.`
        )
        return context.skip()
      }
      yield* expectRecorded("postgres", fresh)
    })
  )

  it.effect("upgrading from any migration gives the schema of a fresh install", () =>
    expectUpgradesMatch("postgres", fresh)
  )
})
