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
 * query reads the rows above the watermark, then walks the postings from the newest
 * back until no earlier run can hold a newer row ({@link newest}).
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

/** The filters the side index serves, by the log column each reads. */
const DIMENSIONS = { key: "key_id", user: "user_id", team: "team_id" } as const

/** A filter the side index serves. @since 0.1.0 */
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
 * The postings read per step of {@link newest}'s walk: the first step reads
 * {@link WALK_FIRST_PAGE}, each later one twice as many, up to this. A posting holds a
 * run's rows of one value, from one to about a thousand, so the walk starts small.
 *
 * @since 0.1.0
 */
export const WALK_PAGE = 128

/** @since 0.1.0 */
export const WALK_FIRST_PAGE = 4

/** A log row as a query reads it: at least its start and id, which order the log. */
type LogRow = Record<string, unknown>

/** Newest first: by start, then by id, as the log is listed. */
const newerFirst = (a: LogRow, b: LogRow): number =>
  whole(b, "started_at") - whole(a, "started_at") || whole(b, "id") - whole(a, "id")

/**
 * The newest `limit` log rows whose `dimension` is `value`, among those `fetch` keeps.
 * `fetch(condition)` reads the rows meeting `condition` and the caller's own filters,
 * newest first, at most `limit`, with their `started_at` and `id`; it should find them
 * by id (`NOT INDEXED`), as the condition names ids or a range of them.
 *
 * It reads the rows above the watermark, then walks the postings from the latest run
 * back, a page at a time (pages growing from {@link WALK_FIRST_PAGE} to
 * {@link WALK_PAGE}), and stops once no earlier run can hold a row newer than the
 * `limit`-th found: an earlier run's rows all have smaller ids, so one that started at
 * the same moment still comes after. A busy key's newest rows cost a page or two
 * instead of its whole history. `from` and `to` (epoch milliseconds) skip the runs
 * whose start times lie outside them; the caller still filters start times exactly.
 *
 * The statements are separate: a row posted between two of them is read twice and
 * kept once, and none that was logged before the walk began is missed.
 *
 * @since 0.1.0
 */
export const newest = <E, R>(
  sql: SqlClient,
  dimension: Dimension,
  value: string,
  range: { readonly from?: number; readonly to?: number },
  limit: number,
  fetch: (condition: Fragment) => Effect.Effect<ReadonlyArray<LogRow>, E, R>
): Effect.Effect<ReadonlyArray<LogRow>, E | SqlError, R> =>
  Effect.gen(function* () {
    // Every statement names the postings `p` (json_each has a `value` column of its own).
    const spans = [
      sql`p.kind = ${dimension}`,
      sql`p.value = ${value}`,
      ...(range.from === undefined ? [] : [sql`p.last_started >= ${range.from}`]),
      ...(range.to === undefined ? [] : [sql`p.first_started < ${range.to}`])
    ]
    let found = new Map<number, LogRow>()
    const keep = (rows: ReadonlyArray<LogRow>) => {
      for (const row of rows) found.set(whole(row, "id"), row)
      const sorted = [...found.values()].sort(newerFirst).slice(0, limit)
      found = new Map(sorted.map((row) => [whole(row, "id"), row]))
      return sorted
    }
    let listed = keep(
      yield* fetch(sql`id > (${sql.literal(WATERMARK)}) AND ${sql(DIMENSIONS[dimension])} = ${value}`)
    )
    let before: number | undefined
    for (let size = WALK_FIRST_PAGE; ; size = Math.min(2 * size, WALK_PAGE)) {
      const below = before === undefined ? [] : [sql`p.last_id < ${before}`]
      const page =
        yield* sql`SELECT p.last_id FROM tb_spend_log_index p WHERE ${sql.and([...spans, ...below])}
        ORDER BY p.last_id DESC LIMIT ${size}`
      const high = page[0]
      const low = page[page.length - 1]
      if (high === undefined || low === undefined) break
      before = whole(low, "last_id")
      listed = keep(
        yield* fetch(
          sql`id IN (SELECT j.value FROM tb_spend_log_index p, json_each(p.ids) j WHERE ${sql.and([
            ...spans,
            sql`p.last_id <= ${whole(high, "last_id")}`,
            sql`p.last_id >= ${before}`
          ])})`
        )
      )
      if (page.length < size) break
      const cutoff = listed[limit - 1]
      if (cutoff === undefined) continue
      const rest = yield* sql`SELECT max(p.last_started) AS latest FROM tb_spend_log_index p
        WHERE ${sql.and([...spans, sql`p.last_id < ${before}`])}`
      // No earlier posting (max over nothing is NULL), or none that started after the cutoff.
      const latest: unknown = rest[0]?.["latest"]
      if (latest === null || latest === undefined) break
      if (whole(rest[0], "latest") <= whole(cutoff, "started_at")) break
    }
    return listed
  })
