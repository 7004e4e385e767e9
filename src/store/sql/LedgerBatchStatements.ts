/**
 * The statements of a group-commit batch (`LedgerBatch.ts`) on SQLite: one read of the
 * batch's counters and holds, and the writes of everything the batch decided, as a few
 * plain statements (in process, they cost no round trips). PostgreSQL runs the whole
 * batch as one function call instead (`PgLedgerBatch.ts`).
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
 * Reads the counters of `keys` and the holds named by `ids` (SQLite has one writer:
 * nothing changes them until the batch commits).
 *
 * @since 0.1.0
 */
export const read = (
  sql: SqlClient,
  keys: ReadonlyArray<string>,
  ids: ReadonlyArray<string>,
  now: number
): Effect.Effect<BatchRead, SqlError> =>
  Effect.zipWith(
    CounterStatements.lock(sql, keys, now),
    sql<
      Record<string, unknown>
    >`SELECT ${sql.literal(HOLD_COLUMNS)} FROM tb_holds WHERE ${sql.in("hold_id", ids)}`,
    (counters, holds): BatchRead => ({ expired: counters.some(isExpired), counters, holds })
  )

/**
 * Writes what a batch decided; returns how many of `closed` were still open (all of
 * them, unless something closed a hold under the batch: then the caller rolls back).
 *
 * @since 0.1.0
 */
export const write = (
  sql: SqlClient,
  { closed, counters, logs, now, opened }: BatchWrite
): Effect.Effect<number, SqlError> =>
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
