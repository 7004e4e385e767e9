/**
 * The steps of a ledger batch and their verdicts. Many ledger steps in one round trip
 * (group commit, PostgreSQL): holds and settles
 * that waited at the same moment are decided one after the other, in arrival order, by
 * one call of the `tb_ledger_batch` function (`PgLedgerBatch.ts`), against the
 * counters as the steps before them left them. One commit, and one wait for the
 * write-ahead log, serves the whole batch; the hot counter row of a shared budget is
 * written once per batch instead of once per step.
 *
 * Each step comes out exactly as it would alone, in that order: a hold that does not
 * fit is refused on its own, and the steps after it see the counters without it. The
 * batch decides only the common case; any other step is handed back (`Fallback`) and
 * runs alone, through the usual step. The embedded SQLite store batches on its own
 * connection instead (`SqliteFastPath.ts`).
 *
 * @since 0.1.0
 */
import type { BudgetExceeded } from "../../domain/Errors.js"
import type * as Money from "../../domain/Money.js"
import type { Hold, HoldRequest, Settlement, SpendLogDraft } from "../SpendLedger.js"

/** A hold waiting for a batch; `keys` are its distinct scope keys in scope order. @since 0.1.0 */
export interface HoldStep {
  readonly _tag: "Hold"
  readonly request: HoldRequest
  readonly keys: ReadonlyArray<string>
  readonly now: number
}

/** A settle waiting for a batch. @since 0.1.0 */
export interface SettleStep {
  readonly _tag: "Settle"
  readonly hold: Hold
  readonly keys: ReadonlyArray<string>
  readonly cost: Money.Money
  readonly log: SpendLogDraft
  readonly now: number
}

/** @since 0.1.0 */
export type Step = HoldStep | SettleStep

/** What the batch made of one step. @since 0.1.0 */
export type Verdict =
  | { readonly _tag: "Held"; readonly hold: Hold }
  | { readonly _tag: "Refused"; readonly error: BudgetExceeded }
  | { readonly _tag: "Settled"; readonly settlement: Settlement }
  | { readonly _tag: "Fallback" }
