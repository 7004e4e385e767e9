/**
 * Everything that differs between PostgreSQL and SQLite, in one place. The rest of
 * the SQL store is written once, in SQL both accept (`ON CONFLICT`, `RETURNING`,
 * `||`, partial indexes).
 *
 * - Row locks: PostgreSQL takes `FOR UPDATE` locks, always in key order, so
 *   concurrent transactions queue instead of deadlocking; SQLite has one writer at a
 *   time and no row locks.
 * - Generated ids: `GENERATED ALWAYS AS IDENTITY` versus `INTEGER PRIMARY KEY AUTOINCREMENT`.
 * - Connection set-up: SQLite enforces foreign keys and waits for a busy file only
 *   when asked to, and syncs the write-ahead log at checkpoints (`synchronous =
 *   NORMAL`: a commit survives a crash of the process, the last ones may not survive
 *   a power loss).
 * - Fast paths: on PostgreSQL the steady-state hold and settle are one statement
 *   each (see `PgFastPath.ts`); SQLite runs in process, where a transaction of small
 *   statements costs no round trips.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { Effect } from "effect"

/** The row-lock clause for the rows a ledger step changes. @since 0.1.0 */
export const forUpdate = (sql: SqlClient): Fragment =>
  sql.onDialectOrElse({ pg: () => sql.literal(" FOR UPDATE"), orElse: () => sql.literal("") })

/** The row-lock clause for one table of a join (PostgreSQL refuses to lock the nullable side). @since 0.1.0 */
export const forUpdateOf = (sql: SqlClient, alias: string): Fragment =>
  sql.onDialectOrElse({ pg: () => sql.literal(` FOR UPDATE OF ${alias}`), orElse: () => sql.literal("") })

/** A generated, increasing primary key column. @since 0.1.0 */
export const identityColumn = (sql: SqlClient, name: string): Fragment =>
  sql.onDialectOrElse({
    pg: () => sql.literal(`${name} BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`),
    orElse: () => sql.literal(`${name} INTEGER PRIMARY KEY AUTOINCREMENT`)
  })

/** Whether rows are locked one by one (PostgreSQL) rather than the whole database having one writer (SQLite). @since 0.1.0 */
export const hasRowLocks = (sql: SqlClient): boolean =>
  sql.onDialectOrElse({ pg: () => true, orElse: () => false })

/** Whether the one-statement ledger steps of `PgFastPath.ts` apply. @since 0.1.0 */
export const hasFastPath = (sql: SqlClient): boolean =>
  sql.onDialectOrElse({ pg: () => true, orElse: () => false })

/**
 * Settings of a fresh connection. SQLite leaves foreign keys off unless told, and
 * fails at once on a locked file instead of waiting.
 *
 * @since 0.1.0
 */
export const prepareConnection = (sql: SqlClient): Effect.Effect<void, SqlError> =>
  sql.onDialectOrElse({
    sqlite: () =>
      Effect.asVoid(
        Effect.all([
          sql`PRAGMA foreign_keys = ON`,
          sql`PRAGMA busy_timeout = 5000`,
          // With the write-ahead log, NORMAL keeps every commit across a crash of the
          // process and syncs at checkpoints instead of at each commit.
          sql`PRAGMA synchronous = NORMAL`
        ])
      ),
    orElse: () => Effect.void
  })

/**
 * Prepares a migration run inside its transaction: on PostgreSQL, a transaction-scoped
 * lock makes concurrent runs wait for each other, and the migrations table is made
 * here because the migrator probes for it with a query whose failure would abort the
 * surrounding transaction. SQLite has a single writer and a probe-free migrator.
 *
 * @since 0.1.0
 */
export const prepareMigrations = (sql: SqlClient, table: string): Effect.Effect<void, SqlError> =>
  sql.onDialectOrElse({
    pg: () =>
      Effect.zipRight(
        sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`,
        sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
  migration_id integer primary key,
  created_at timestamp with time zone not null default now(),
  name text not null
)`
      ).pipe(Effect.asVoid),
    orElse: () => Effect.void
  })

/** An arbitrary constant naming the migration lock. */
const MIGRATION_LOCK_ID = 7_260_011_842
