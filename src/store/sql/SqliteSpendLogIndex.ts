/**
 * The spend log's filters (key, user, team) on the embedded SQLite store, indexed in
 * bulk instead of row by row.
 *
 * An index on `(key_id, started_at)` puts each key's rows together, so every settle
 * of a different key changes a different page of it, and every page a commit changes
 * is written whole to the write-ahead log and later checkpointed. With many keys
 * (users, teams) in flight that was most of what a settle cost the embedded store.
 *
 * So on SQLite the log is written append-only (its own rows and `started_at` only),
 * and `tb_spend_log_index` keeps a postings list per key, user and team: one row for
 * each value and each run of the log indexed at once, with the ids of that value's
 * rows in the run (a JSON array) and the span of their start times. The ledger's
 * batches index the rows above a watermark (`tb_spend_log_indexed.through`) once
 * enough have gathered (`catchUp`): a few rows written for about a thousand logged. A
 * query reads the postings up to the watermark and the few rows above it in one
 * statement, so it never misses a row.
 *
 * Log ids only grow (`AUTOINCREMENT`, one writer at a time), so the watermark is exact.
 * PostgreSQL keeps its ordinary indexes; nothing here runs there.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import type Database from "better-sqlite3"
import { Effect } from "effect"

/** The filters the side index serves, by the log column each reads. @since 0.1.0 */
export const DIMENSIONS = { key: "key_id", user: "user_id", team: "team_id" } as const

/** @since 0.1.0 */
export type Dimension = keyof typeof DIMENSIONS

/**
 * Rows a connection logs before its batches index them: a query reads about this many
 * rows (per process writing) above the watermark directly.
 *
 * @since 0.1.0
 */
export const CATCH_UP_ROWS = 1024

/** Log ids per postings run when the migration indexes a log that already exists. */
const MIGRATION_RUN = 65_536

const WATERMARK = `SELECT through FROM tb_spend_log_indexed WHERE id = 1`

/**
 * Adds the postings of the log rows with ids in `(from, to]`: one row per filter value.
 * Its parameters are the two bounds once per branch ({@link rangeOf}).
 */
const INDEX_RANGE = `INSERT INTO tb_spend_log_index (kind, value, last_id, first_started, last_started, ids)
  SELECT kind, value, max(id), min(started_at), max(started_at), json_group_array(id) FROM (
    SELECT 'key' AS kind, key_id AS value, started_at, id FROM tb_spend_logs WHERE id > ? AND id <= ?
    UNION ALL
    SELECT 'user', user_id, started_at, id FROM tb_spend_logs WHERE id > ? AND id <= ? AND user_id IS NOT NULL
    UNION ALL
    SELECT 'team', team_id, started_at, id FROM tb_spend_logs WHERE id > ? AND id <= ? AND team_id IS NOT NULL
  ) GROUP BY kind, value`

/** The parameters of {@link INDEX_RANGE}. */
const rangeOf = (from: number, to: number): ReadonlyArray<number> => [from, to, from, to, from, to]

const MOVE_WATERMARK = `UPDATE tb_spend_log_indexed SET through = ? WHERE id = 1`

const LAST_ID = `SELECT coalesce(max(id), 0) AS last FROM tb_spend_logs`

/** Reads a whole-number column that better-sqlite3 may answer as a bigint. */
const whole = (row: unknown, column: string): number => {
  const value: unknown = typeof row === "object" && row !== null ? Reflect.get(row, column) : undefined
  return typeof value === "bigint" ? Number(value) : typeof value === "number" ? value : 0
}

/**
 * The `6_spend_log_side_index` migration on SQLite: makes the index and its watermark,
 * indexes every row already logged, and drops the row-by-row indexes it replaces.
 *
 * @since 0.1.0
 */
export const install = (sql: SqlClient): Effect.Effect<void, SqlError> =>
  Effect.gen(function* () {
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS tb_spend_log_index (
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  last_id INTEGER NOT NULL,
  first_started BIGINT NOT NULL,
  last_started BIGINT NOT NULL,
  ids TEXT NOT NULL,
  PRIMARY KEY (kind, value, last_id)
) WITHOUT ROWID`)
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS tb_spend_log_indexed (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  through INTEGER NOT NULL
)`)
    yield* sql.unsafe(
      `INSERT INTO tb_spend_log_indexed (id, through) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`
    )
    const last = whole((yield* sql.unsafe(LAST_ID))[0], "last")
    // In runs, so that a start-date filter can skip most of a long history's postings.
    for (let from = 0; from < last; from += MIGRATION_RUN) {
      yield* sql.unsafe(INDEX_RANGE, rangeOf(from, Math.min(from + MIGRATION_RUN, last)))
    }
    yield* sql.unsafe(MOVE_WATERMARK, [last])
    yield* sql.unsafe(`DROP INDEX IF EXISTS tb_spend_logs_key`)
    yield* sql.unsafe(`DROP INDEX IF EXISTS tb_spend_logs_user`)
    yield* sql.unsafe(`DROP INDEX IF EXISTS tb_spend_logs_team`)
  })

/**
 * Indexes every logged row above the watermark and moves it; synchronous, inside the
 * caller's transaction (a ledger batch), so the rows and the watermark move together.
 *
 * @since 0.1.0
 */
export const catchUp = (db: Database.Database): void => {
  const through = whole(db.prepare(WATERMARK).get(), "through")
  const last = whole(db.prepare(LAST_ID).get(), "last")
  if (last <= through) return
  db.prepare(INDEX_RANGE).run(...rangeOf(through, last))
  db.prepare(MOVE_WATERMARK).run(last)
}

/**
 * The log rows whose `dimension` is `value`, as a condition on `tb_spend_logs`: the
 * postings up to the watermark (only those whose start times reach into `from` and
 * `to`, in epoch milliseconds, when given), and the rows above it read directly. One
 * statement, so the two parts see the same moment. It narrows the rows to look at; the
 * caller still filters their start times exactly.
 *
 * @example
 * // sql`SELECT * FROM tb_spend_logs WHERE ${SqliteSpendLogIndex.rowsOf(sql, "key", keyId, {})}`
 * @since 0.1.0
 */
export const rowsOf = (
  sql: SqlClient,
  dimension: Dimension,
  value: string,
  range: { readonly from?: number; readonly to?: number }
): Fragment => {
  const since = range.from === undefined ? sql.literal("") : sql` AND p.last_started >= ${range.from}`
  const until = range.to === undefined ? sql.literal("") : sql` AND p.first_started < ${range.to}`
  return sql`id IN (
    SELECT j.value FROM tb_spend_log_index p, json_each(p.ids) j
      WHERE p.kind = ${dimension} AND p.value = ${value}${since}${until}
    UNION ALL
    SELECT id FROM tb_spend_logs WHERE id > (${sql.literal(WATERMARK)}) AND ${sql(DIMENSIONS[dimension])} = ${value}
  )`
}
