/**
 * The statements of a group-commit batch (`LedgerBatch.ts`): one read that locks the
 * batch's counters in key order and finds its holds, and the writes of everything the
 * batch decided. On PostgreSQL each is a single statement over arrays, so a batch
 * costs four round trips however many steps it serves (BEGIN, read, write, COMMIT);
 * SQLite, in process, runs the same work as a few plain statements.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type * as Money from "../../domain/Money.js"
import type { SpendLogDraft } from "../SpendLedger.js"
import * as CounterStatements from "./CounterStatements.js"
import type * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"

/** What a batch reads under its locks. @since 0.1.0 */
export interface BatchRead {
  /** An open hold somewhere has expired: it must be reclaimed before any step. */
  readonly expired: boolean
  readonly counters: ReadonlyArray<Record<string, unknown>>
  readonly holds: ReadonlyArray<Record<string, unknown>>
}

/** A new hold to insert. @since 0.1.0 */
export interface NewHold {
  readonly holdId: string
  readonly scopeKeys: string
  readonly amount: Money.Money
  readonly expiresAt: number
}

/** An open hold to mark settled, as the batch read it. @since 0.1.0 */
export interface ClosedHold {
  readonly holdId: string
  readonly amount: Money.Money
  readonly expiresAt: number
}

/** A spend log row to insert. @since 0.1.0 */
export interface LogRow {
  readonly log: SpendLogDraft
  readonly cost: Money.Money
}

/** What a batch writes. @since 0.1.0 */
export interface BatchWrite {
  readonly now: number
  readonly counters: ReadonlyArray<Counters.Counter>
  readonly opened: ReadonlyArray<NewHold>
  readonly closed: ReadonlyArray<ClosedHold>
  readonly logs: ReadonlyArray<LogRow>
}

const HOLD_COLUMNS = "hold_id, scope_keys, amount, expires_at, state, closed_at"

const isExpired = (row: Record<string, unknown>) => row["expired"] !== null && row["expired"] !== undefined

/**
 * Locks the counters of `keys` in key order and reads the holds named by `ids`.
 *
 * @since 0.1.0
 */
export const read = (
  sql: SqlClient,
  keys: ReadonlyArray<string>,
  ids: ReadonlyArray<string>,
  now: number
): Effect.Effect<BatchRead, SqlError> =>
  Dialect.hasRowLocks(sql) ? readPg(sql, keys, ids, now) : readPortable(sql, keys, ids, now)

const readPortable = (sql: SqlClient, keys: ReadonlyArray<string>, ids: ReadonlyArray<string>, now: number) =>
  Effect.zipWith(
    CounterStatements.lock(sql, keys, now),
    sql<
      Record<string, unknown>
    >`SELECT ${sql.literal(HOLD_COLUMNS)} FROM tb_holds WHERE ${sql.in("hold_id", ids)}`,
    (counters, holds): BatchRead => ({ expired: counters.some(isExpired), counters, holds })
  )

/**
 * One statement: the locking branch runs first (an `Append` runs its children in
 * order). The holds branch reads the statement's snapshot, which may predate a lock
 * wait; a hold closed meanwhile is caught by the guarded write, which then rolls the
 * batch back.
 */
const readPg = (sql: SqlClient, keys: ReadonlyArray<string>, ids: ReadonlyArray<string>, now: number) =>
  Effect.map(
    sql<Record<string, unknown>>`WITH locked AS MATERIALIZED (
        SELECT scope_key, total, window_spend, held, anchor, window_start, window_end, max_budget, budget_duration
        FROM tb_counters WHERE scope_key = ANY(${keys}::text[]) ORDER BY scope_key FOR UPDATE
      )
      SELECT 'counter' AS kind, scope_key, total, window_spend, held, anchor, window_start, window_end, max_budget,
        budget_duration, NULL::text AS hold_id, NULL::text AS scope_keys, NULL::bigint AS amount,
        NULL::bigint AS expires_at, NULL::text AS state, NULL::bigint AS closed_at,
        (SELECT 1 FROM tb_holds WHERE state = 'open' AND expires_at <= ${now}::bigint LIMIT 1) AS expired
      FROM locked
      UNION ALL
      SELECT 'hold', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ${sql.literal(HOLD_COLUMNS)}, NULL
      FROM tb_holds WHERE hold_id = ANY(${ids}::text[])`,
    (rows): BatchRead => {
      const counters = rows.filter((row) => row["kind"] === "counter")
      return {
        expired: counters.some(isExpired),
        counters,
        holds: rows.filter((row) => row["kind"] === "hold")
      }
    }
  )

/**
 * Writes what a batch decided; returns how many of `closed` were still open (all of
 * them, unless something closed a hold under the batch: then the caller rolls back).
 *
 * @since 0.1.0
 */
export const write = (sql: SqlClient, batch: BatchWrite): Effect.Effect<number, SqlError> =>
  Dialect.hasRowLocks(sql) ? writePg(sql, batch) : writePortable(sql, batch)

const writePg = (sql: SqlClient, { closed, counters, logs, now, opened }: BatchWrite) => {
  const column = <A>(rows: ReadonlyArray<A>, f: (row: A) => unknown): ReadonlyArray<unknown> => rows.map(f)
  return Effect.map(
    sql<Record<string, unknown>>`WITH counters AS (
        UPDATE tb_counters c SET total = v.total, window_spend = v.window_spend, held = v.held,
          window_start = v.window_start, window_end = v.window_end
        FROM unnest(${column(counters, (c) => c.key)}::text[], ${column(counters, (c) => c.total)}::bigint[],
          ${column(counters, (c) => c.windowSpend)}::bigint[], ${column(counters, (c) => c.held)}::bigint[],
          ${column(counters, (c) => c.windowStart)}::bigint[],
          ${column(counters, (c) => Option.getOrNull(c.windowEnd))}::bigint[])
          AS v(scope_key, total, window_spend, held, window_start, window_end)
        WHERE c.scope_key = v.scope_key
        RETURNING 1
      ), opened AS (
        INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state)
        SELECT hold_id, scope_keys, amount, expires_at, 'open'
        FROM unnest(${column(opened, (h) => h.holdId)}::text[], ${column(opened, (h) => h.scopeKeys)}::text[],
          ${column(opened, (h) => h.amount)}::bigint[], ${column(opened, (h) => h.expiresAt)}::bigint[])
          AS v(hold_id, scope_keys, amount, expires_at)
        RETURNING 1
      ), closed AS (
        UPDATE tb_holds h SET state = 'settled', closed_at = ${now}::bigint
        FROM unnest(${column(closed, (h) => h.holdId)}::text[], ${column(closed, (h) => h.amount)}::bigint[],
          ${column(closed, (h) => h.expiresAt)}::bigint[]) AS v(hold_id, amount, expires_at)
        WHERE h.hold_id = v.hold_id AND h.state = 'open' AND h.amount = v.amount AND h.expires_at = v.expires_at
        RETURNING 1
      ), logged AS (
        INSERT INTO tb_spend_logs (request_id, key_id, key_hash, key_label, user_id, team_id, organization_id,
          end_user, model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status)
        SELECT request_id, key_id, key_hash, key_label, user_id, team_id, organization_id, end_user, model,
          prompt_tokens, completion_tokens, cost, started_at, ${now}::bigint, status
        FROM unnest(${column(logs, (l) => l.log.requestId)}::text[], ${column(logs, (l) => l.log.keyId)}::text[],
          ${column(logs, (l) => l.log.keyHash)}::text[], ${column(logs, (l) => l.log.keyLabel)}::text[],
          ${column(logs, (l) => Option.getOrNull(l.log.userId))}::text[],
          ${column(logs, (l) => Option.getOrNull(l.log.teamId))}::text[],
          ${column(logs, (l) => Option.getOrNull(l.log.organizationId))}::text[],
          ${column(logs, (l) => Option.getOrNull(l.log.endUser))}::text[],
          ${column(logs, (l) => l.log.model)}::text[], ${column(logs, (l) => l.log.promptTokens)}::bigint[],
          ${column(logs, (l) => l.log.completionTokens)}::bigint[], ${column(logs, (l) => l.cost)}::bigint[],
          ${column(logs, (l) => l.log.startedAt.epochMillis)}::bigint[], ${column(logs, (l) => l.log.status)}::text[])
          AS v(request_id, key_id, key_hash, key_label, user_id, team_id, organization_id, end_user, model,
            prompt_tokens, completion_tokens, cost, started_at, status)
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM closed) AS closed, (SELECT count(*) FROM counters) AS counters,
        (SELECT count(*) FROM opened) AS opened, (SELECT count(*) FROM logged) AS logged`,
    (rows) => Number(rows[0]?.["closed"] ?? 0)
  )
}

const writePortable = (sql: SqlClient, { closed, counters, logs, now, opened }: BatchWrite) =>
  Effect.gen(function* () {
    if (counters.length > 0) {
      yield* sql`UPDATE tb_counters SET total = v.column2, window_spend = v.column3, held = v.column4,
        window_start = v.column5, window_end = v.column6
        FROM (VALUES ${sql.csv(
          counters.map(
            (c) =>
              sql`(${c.key}, ${c.total}, ${c.windowSpend}, ${c.held}, ${c.windowStart}, ${Option.getOrNull(c.windowEnd)})`
          )
        )}) AS v WHERE tb_counters.scope_key = v.column1`
    }
    if (opened.length > 0) {
      yield* sql`INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state) VALUES ${sql.csv(
        opened.map((h) => sql`(${h.holdId}, ${h.scopeKeys}, ${h.amount}, ${h.expiresAt}, 'open')`)
      )}`
    }
    if (closed.length === 0) return 0
    // One writer at a time: nothing can close these holds between the read and this write.
    const still = yield* sql`UPDATE tb_holds SET state = 'settled', closed_at = ${now}
      WHERE ${sql.in(
        "hold_id",
        closed.map((h) => h.holdId)
      )} AND state = 'open' RETURNING hold_id`
    yield* sql`INSERT INTO tb_spend_logs (request_id, key_id, key_hash, key_label, user_id, team_id,
      organization_id, end_user, model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status)
      VALUES ${sql.csv(
        logs.map(
          ({ cost, log }) =>
            sql`(${log.requestId}, ${log.keyId}, ${log.keyHash}, ${log.keyLabel}, ${Option.getOrNull(log.userId)},
              ${Option.getOrNull(log.teamId)}, ${Option.getOrNull(log.organizationId)},
              ${Option.getOrNull(log.endUser)}, ${log.model}, ${log.promptTokens}, ${log.completionTokens}, ${cost},
              ${log.startedAt.epochMillis}, ${now}, ${log.status})`
        )
      )}`
    return still.length
  })
