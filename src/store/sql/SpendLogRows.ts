/**
 * The spend log row a settlement writes, in one place for the ledger paths that insert
 * it from a record: the portable step (`SqlLedger.ts`) and the embedded store's
 * synchronous step (`SqliteFastPath.ts`). PostgreSQL's one-statement and batch paths
 * pass the same values as typed parameters inside their own statements.
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

/** The insert with named parameters (`@request_id`, ...), for better-sqlite3. @since 0.1.0 */
export const NAMED_INSERT = `INSERT INTO tb_spend_logs (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(
  (column) => `@${column}`
).join(", ")})`
