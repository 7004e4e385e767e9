/**
 * The steady-state ledger steps on PostgreSQL, one statement (one round trip) each.
 *
 * Each statement locks the step's counters in key order (`FOR UPDATE`), decides, and
 * writes, atomically. It applies only in the common case: every counter exists, no
 * window needs its reset, no hold anywhere has expired unreclaimed, and (for a settle)
 * the hold is open. Otherwise it changes nothing and reports so, and the portable
 * step of `SqlLedger.ts` does the work in a transaction. So these statements never
 * decide anything the portable step would decide differently; they only skip its
 * round trips.
 *
 * Statement order inside: data-modifying CTEs run after the `FOR UPDATE` CTE they
 * depend on, and an `UPDATE` of a row this statement locked re-reads its newest
 * version, so concurrent statements serialise on the counters like transactions do.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { DateTime, Effect, Either, Option, Schema } from "effect"
import type { BudgetExceeded } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import type { Hold, HoldRequest, Settlement, SpendLogDraft } from "../SpendLedger.js"
import { BigIntColumn, FlagColumn, nullable } from "./Columns.js"
import * as Counters from "./Counters.js"
import { encodeKeys } from "./Holds.js"
import { isUniqueSqlError } from "./SqlErrors.js"

const SeenRow = Schema.Struct({
  scope_key: Schema.String,
  spend: BigIntColumn,
  held: BigIntColumn,
  max_budget: nullable(BigIntColumn),
  window_end: nullable(BigIntColumn),
  windowed: FlagColumn
})

const decodeSeen = (row: Record<string, unknown>): Option.Option<Counters.View> =>
  Option.map(Either.getRight(Schema.decodeUnknownEither(SeenRow)(row)), (r) => ({
    key: r.scope_key,
    spend: Money.make(r.spend),
    held: Money.make(r.held),
    maxBudget: Option.map(r.max_budget, Money.make),
    resetAt: r.windowed ? Option.map(r.window_end, (end) => DateTime.unsafeMake(Number(end))) : Option.none()
  }))

/**
 * The hold a step placed: `held` on every scope of `request` until `expiresAt`, with the
 * tightest scope as the step saw the counters before it.
 *
 * @since 0.1.0
 */
export const opened = (
  request: HoldRequest,
  held: Money.Money,
  expiresAt: number,
  views: ReadonlyMap<string, Counters.View>
): Hold => ({
  holdId: request.holdId,
  scopes: request.scopes,
  amount: held,
  expiresAt: DateTime.unsafeMake(expiresAt),
  tightest: Counters.tightest(request.scopes, views, held)
})

/** What a fast hold came to. @since 0.1.0 */
export type HoldOutcome =
  | { readonly _tag: "Held"; readonly hold: Hold }
  | { readonly _tag: "Refused"; readonly error: BudgetExceeded }
  | {
      readonly _tag: "Fallback"
      /** Keys without a counter: make them and try again. */
      readonly missing: ReadonlyArray<string>
      /** An open hold has expired: reclaim it and try again. */
      readonly expired: boolean
    }

/** Nothing more is known: the portable step decides. */
const FALLBACK: HoldOutcome = { _tag: "Fallback", missing: [], expired: false }

const SPEND = "(CASE WHEN budget_duration IS NULL THEN total ELSE window_spend END)"

const fresh = (sql: SqlClient, now: number) =>
  sql`(budget_duration IS NULL OR (window_end IS NOT NULL AND window_start <= ${now}::bigint
      AND ${now}::bigint < window_end))
    AND total >= 0 AND window_spend >= 0 AND held >= 0 AND (max_budget IS NULL OR max_budget >= 0)`

/**
 * Places a hold in one statement, or refuses it, or hands over to the portable step.
 *
 * @since 0.1.0
 */
export const hold = (
  sql: SqlClient,
  request: HoldRequest,
  keys: ReadonlyArray<string>,
  now: number,
  expiresAt: number
): Effect.Effect<HoldOutcome, SqlError> => {
  const strict = request.mode === "strict"
  const held = strict ? request.amount : Money.zero
  const fits = strict ? sql`spend + held + ${request.amount}::bigint <= max_budget` : sql`spend < max_budget`
  const statement = sql<Record<string, unknown>>`WITH locked AS MATERIALIZED (
      SELECT scope_key, held, window_end, max_budget, budget_duration IS NOT NULL AS windowed,
        ${sql.literal(SPEND)} AS spend, ${fresh(sql, now)} AS fresh
      FROM tb_counters WHERE scope_key = ANY(${keys}::text[]) ORDER BY scope_key FOR UPDATE
    ), verdict AS MATERIALIZED (
      SELECT count(*) AS found, coalesce(bool_and(fresh), true) AS fresh,
        coalesce(bool_and(max_budget IS NULL OR ${fits}), true) AS fits,
        NOT EXISTS (SELECT 1 FROM tb_holds WHERE state = 'open' AND expires_at <= ${now}::bigint) AS clean
      FROM locked
    ), go AS MATERIALIZED (
      SELECT 1 AS ok FROM verdict WHERE found = ${keys.length}::bigint AND fresh AND fits AND clean
    ), bumped AS (
      UPDATE tb_counters c SET held = c.held + ${held}::bigint FROM go
      WHERE c.scope_key = ANY(${keys}::text[]) RETURNING c.scope_key
    ), opened AS (
      INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state)
      SELECT ${request.holdId}, ${encodeKeys(keys)}, ${held}::bigint, ${expiresAt}::bigint, 'open' FROM go
      RETURNING hold_id
    )
    SELECT l.scope_key, l.spend, l.held, l.max_budget, l.window_end, l.windowed,
      v.found, v.fresh, v.fits, v.clean, (SELECT count(*) FROM opened) AS opened,
      (SELECT count(*) FROM bumped) AS bumped
    FROM verdict v LEFT JOIN locked l ON true`
  return statement.pipe(
    Effect.map((rows): HoldOutcome => {
      const first = rows[0]
      if (first === undefined) return FALLBACK
      const seen = new Map<string, Counters.View>()
      for (const row of rows) {
        const decoded = decodeSeen(row)
        if (Option.isSome(decoded)) seen.set(decoded.value.key, decoded.value)
      }
      if (String(first["opened"]) === "1")
        return { _tag: "Held", hold: opened(request, held, expiresAt, seen) }
      if (first["clean"] === false) return { _tag: "Fallback", missing: [], expired: true }
      if (String(first["found"]) !== String(keys.length)) {
        const found = new Set(rows.map((row) => row["scope_key"]))
        return { _tag: "Fallback", missing: keys.filter((key) => !found.has(key)), expired: false }
      }
      const decided =
        String(first["found"]) === String(keys.length) &&
        first["fresh"] === true &&
        first["clean"] === true &&
        first["fits"] === false &&
        seen.size === keys.length
      if (!decided) return FALLBACK
      const error = Counters.refusal(request, seen)
      if (error !== undefined) return { _tag: "Refused", error }
      return FALLBACK
    }),
    // A reused hold id: the portable step decides whether the old hold was closed.
    Effect.catchIf(isUniqueSqlError, () => Effect.succeed(FALLBACK))
  )
}

/**
 * Settles an open, unexpired hold in one statement: gives back what it held, charges
 * the cost on every scope and writes the spend log row. `None` hands over to the
 * portable step (the hold is closed or expired, or a window must reset first).
 *
 * @since 0.1.0
 */
export const settle = (
  sql: SqlClient,
  hold: Hold,
  keys: ReadonlyArray<string>,
  cost: Money.Money,
  log: SpendLogDraft,
  now: number
): Effect.Effect<Option.Option<Settlement>, SqlError> => {
  const statement = sql<Record<string, unknown>>`WITH h AS MATERIALIZED (
      SELECT amount FROM tb_holds
      WHERE hold_id = ${hold.holdId} AND state = 'open' AND expires_at > ${now}::bigint
        AND scope_keys = ${encodeKeys(keys)}
    ), locked AS MATERIALIZED (
      SELECT scope_key, ${fresh(sql, now)} AS fresh
      FROM tb_counters WHERE scope_key = ANY(${keys}::text[]) AND EXISTS (SELECT 1 FROM h)
      ORDER BY scope_key FOR UPDATE
    ), go AS MATERIALIZED (
      SELECT 1 AS ok FROM (SELECT count(*) AS found, coalesce(bool_and(fresh), false) AS fresh FROM locked) s
      WHERE s.found = ${keys.length}::bigint AND s.fresh
        AND NOT EXISTS (SELECT 1 FROM tb_holds WHERE state = 'open' AND expires_at <= ${now}::bigint)
    ), closed AS (
      UPDATE tb_holds SET state = 'settled', closed_at = ${now}::bigint FROM go
      WHERE hold_id = ${hold.holdId} AND state = 'open' AND expires_at > ${now}::bigint
      RETURNING amount
    ), charged AS (
      UPDATE tb_counters c SET held = GREATEST(c.held - closed.amount, 0),
        total = c.total + ${cost}::bigint, window_spend = c.window_spend + ${cost}::bigint
      FROM closed WHERE c.scope_key = ANY(${keys}::text[])
      RETURNING c.scope_key, CASE WHEN c.budget_duration IS NULL THEN c.total ELSE c.window_spend END AS spend,
        c.held, c.max_budget, c.window_end, c.budget_duration IS NOT NULL AS windowed
    ), logged AS (
      INSERT INTO tb_spend_logs (request_id, key_id, key_hash, key_label, user_id, team_id, organization_id,
        end_user, model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status)
      SELECT ${log.requestId}, ${log.keyId}, ${log.keyHash}, ${log.keyLabel}, ${Option.getOrNull(log.userId)},
        ${Option.getOrNull(log.teamId)}, ${Option.getOrNull(log.organizationId)}, ${Option.getOrNull(log.endUser)},
        ${log.model}, ${log.promptTokens}::bigint, ${log.completionTokens}::bigint, ${cost}::bigint,
        ${log.startedAt.epochMillis}::bigint, ${now}::bigint, ${log.status}
      FROM closed RETURNING id
    )
    SELECT scope_key, spend, held, max_budget, window_end, windowed FROM charged`
  return Effect.map(statement, (rows) => {
    // Either the hold was closed and every counter charged, or nothing happened.
    if (rows.length === 0) return Option.none()
    const seen = new Map<string, Counters.View>()
    for (const row of rows) {
      const decoded = decodeSeen(row)
      if (Option.isSome(decoded)) seen.set(decoded.value.key, decoded.value)
    }
    return Option.some({ cost, late: false, tightest: Counters.tightest(hold.scopes, seen, Money.zero) })
  })
}
