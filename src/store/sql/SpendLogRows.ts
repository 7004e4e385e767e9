/**
 * The spend log row a settlement writes, in one place for the ledger paths that insert
 * it from here: the portable step (`SqlLedger.ts`, a record) and the embedded store's
 * synchronous step (`SqliteFastPath.ts`, the same values by position). PostgreSQL's
 * one-statement and batch paths pass the same values as typed parameters inside their
 * own statements.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import type * as Money from "../../domain/Money.js"
import type { SpendLogDraft } from "../SpendLedger.js"

/** The columns of `tb_spend_logs` a settlement fills, in insert order. @since 0.1.0 */
export const COLUMNS = [
  "request_id",
  "key_id",
  "key_hash",
  "key_label",
  "user_id",
  "team_id",
  "organization_id",
  "end_user",
  "model",
  "prompt_tokens",
  "completion_tokens",
  "cost",
  "started_at",
  "ended_at",
  "status"
] as const

/** @since 0.1.0 */
export type SpendLogRow = { readonly [K in (typeof COLUMNS)[number]]: string | number | bigint | null }

/**
 * The row of a settlement that cost `cost` and ended at `now`.
 *
 * @example
 * // yield* sql`INSERT INTO tb_spend_logs ${sql.insert(SpendLogRows.row(log, cost, now))}`
 * @since 0.1.0
 */
export const row = (log: SpendLogDraft, cost: Money.Money, now: number): SpendLogRow => ({
  request_id: log.requestId,
  key_id: log.keyId,
  key_hash: log.keyHash,
  key_label: log.keyLabel,
  user_id: Option.getOrNull(log.userId),
  team_id: Option.getOrNull(log.teamId),
  organization_id: Option.getOrNull(log.organizationId),
  end_user: Option.getOrNull(log.endUser),
  model: log.model,
  prompt_tokens: log.promptTokens,
  completion_tokens: log.completionTokens,
  cost,
  started_at: log.startedAt.epochMillis,
  ended_at: now,
  status: log.status
})

/**
 * The values of {@link row}, in {@link COLUMNS} order, for {@link POSITIONAL_INSERT}:
 * better-sqlite3 binds an array by position, without looking up a name per column.
 *
 * @example
 * // db.prepare(SpendLogRows.POSITIONAL_INSERT).run(SpendLogRows.values(log, cost, now))
 * @since 0.1.0
 */
export const values = (
  log: SpendLogDraft,
  cost: Money.Money,
  now: number
): Array<string | number | bigint | null> => {
  const written = row(log, cost, now)
  return COLUMNS.map((column) => written[column])
}

/** The insert with positional parameters, for better-sqlite3 and {@link values}. @since 0.1.0 */
export const POSITIONAL_INSERT = `INSERT INTO tb_spend_logs (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(
  () => "?"
).join(", ")})`
