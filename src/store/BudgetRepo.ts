/**
 * Reusable budgets. The budget with id `"global"`, when it exists, is the global cap
 * that binds every request (SPEC 3).
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { Budget } from "../domain/Budget.js"
import type { NotFound } from "../domain/Errors.js"
import type { BudgetId } from "../domain/Ids.js"
import type { LimitsPatch } from "../domain/Limits.js"
import type { StoreError } from "./StoreError.js"

/** The id of the global budget. @since 0.1.0 */
export const GLOBAL_BUDGET_ID = "global"

/** @since 0.1.0 */
export interface BudgetRepoShape {
  readonly find: (budgetId: BudgetId) => Effect.Effect<Option.Option<Budget>, StoreError>
  /** Creates the budget when it does not exist, else applies the patch. */
  readonly upsert: (budgetId: BudgetId, patch: LimitsPatch) => Effect.Effect<Budget, StoreError>
  readonly delete: (budgetId: BudgetId) => Effect.Effect<void, NotFound | StoreError>
}

/** @since 0.1.0 */
export class BudgetRepo extends Context.Tag("teambudget/BudgetRepo")<BudgetRepo, BudgetRepoShape>() {}
