/**
 * The global budget: a cap over every request (SPEC 3), changed by the master only.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { limitPatchFields } from "./Fields.js"

/**
 * A change to the global budget's limits: absent fields stay, `null` clears (SPEC 4).
 *
 * @example
 * decodeRequest(GlobalBudgetUpdate)({ max_budget: 10000, budget_duration: "1mo" })
 * @since 0.1.0
 */
export const GlobalBudgetUpdate = Schema.Struct(limitPatchFields)
/** @since 0.1.0 */
export type GlobalBudgetUpdate = typeof GlobalBudgetUpdate.Type
