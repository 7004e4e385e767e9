/**
 * Reusable budgets in the memory store: members' own budgets and the global cap.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import { Budget } from "../../domain/Budget.js"
import { NotFound } from "../../domain/Errors.js"
import type { BudgetId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import * as Scope from "../../domain/Scope.js"
import type { BudgetRepoShape } from "../BudgetRepo.js"
import { restartWindow } from "./MemoryCounters.js"
import { globalBudgetId, type MemoryState } from "./MemoryState.js"

/** The counters whose caps this budget sets: the global scope, or the memberships pointing at it. */
const scopesBoundBy = (state: MemoryState, budgetId: BudgetId): Array<string> => {
  const keys = budgetId === globalBudgetId ? [Scope.key({ kind: "global" })] : []
  for (const [key, row] of state.memberships) if (Option.contains(row.budgetId, budgetId)) keys.push(key)
  return keys
}

/** @since 0.1.0 */
export const make = (state: MemoryState): BudgetRepoShape => ({
  find: Effect.fn("BudgetRepo.find")((budgetId: BudgetId) =>
    Effect.sync(() =>
      Option.map(
        Option.fromNullable(state.budgets.get(budgetId)),
        (limits) => new Budget({ budgetId, limits }, true)
      )
    )
  ),

  upsert: Effect.fn("BudgetRepo.upsert")(function* (budgetId: BudgetId, patch: Limits.LimitsPatch) {
    const now = yield* Clock.currentTimeMillis
    const before = state.budgets.get(budgetId) ?? Limits.none
    if (Limits.changesDuration(before, patch)) {
      for (const key of scopesBoundBy(state, budgetId)) restartWindow(state, key, now)
    }
    const limits = Limits.patch(before, patch)
    state.budgets.set(budgetId, limits)
    return new Budget({ budgetId, limits }, true)
  }),

  delete: Effect.fn("BudgetRepo.delete")(function* (budgetId: BudgetId) {
    if (!state.budgets.has(budgetId)) return yield* new NotFound({ entity: "budget", id: budgetId })
    state.budgets.delete(budgetId)
    // Members that pointed at it keep no cap of their own, as a NULL link reads.
    for (const [key, row] of state.memberships) {
      if (Option.contains(row.budgetId, budgetId))
        state.memberships.set(key, { ...row, budgetId: Option.none() })
    }
  })
})
