/**
 * A reusable budget: a named set of limits (LiteLLM's `litellm_budget_table`).
 * Team memberships point at one, or at none.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { BudgetId } from "./Ids.js"
import { Limits } from "./Limits.js"

/** @since 0.1.0 */
export class Budget extends Schema.Class<Budget>("Budget")({
  budgetId: BudgetId,
  limits: Limits
}) {}
