/**
 * Reusable budgets in the SQL stores: members' own budgets and the global cap. A
 * change to a budget is copied, in the same transaction, into the counters of every
 * scope it caps.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Option, Schema } from "effect"
import { Budget } from "../../domain/Budget.js"
import { NotFound } from "../../domain/Errors.js"
import { BudgetId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import * as Scope from "../../domain/Scope.js"
import { type BudgetRepoShape, GLOBAL_BUDGET_ID } from "../BudgetRepo.js"
import { limitFields, limitValues, toLimits } from "./Columns.js"
import * as CounterStatements from "./CounterStatements.js"
import * as Dialect from "./Dialect.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeFirst, type RepoContext } from "./SqlSupport.js"

const BudgetRow = Schema.Struct({ budget_id: BudgetId, ...limitFields })

const decodeRow = rowDecoder("budget", BudgetRow, column("budget_id"))

const toBudget = (row: typeof BudgetRow.Type): Budget =>
  new Budget({ budgetId: row.budget_id, limits: toLimits(row) }, true)

/** The counters a budget caps: the global scope, or the memberships pointing at it. */
const scopesBoundBy = (sql: SqlClient, budgetId: string): Effect.Effect<Array<string>, SqlError> =>
  Effect.map(
    sql<{ readonly scope_key: string }>`SELECT scope_key FROM tb_memberships WHERE budget_id = ${budgetId}`,
    (rows) => [
      ...(budgetId === GLOBAL_BUDGET_ID ? [Scope.key({ kind: "global" })] : []),
      ...rows.map((row) => row.scope_key)
    ]
  )

/**
 * Copies a budget's limits into the counters it caps; `restart` starts their windows
 * anew (the window length changed).
 *
 * @since 0.1.0
 */
export const syncBudgetScopes = (
  sql: SqlClient,
  budgetId: string,
  limits: Limits.Limits | undefined,
  now: number,
  restart: boolean,
  except: ReadonlySet<string> = new Set()
): Effect.Effect<void, SqlError> =>
  Effect.flatMap(scopesBoundBy(sql, budgetId), (keys) =>
    Effect.forEach(
      keys.filter((key) => !except.has(key)),
      (key) => CounterStatements.syncScope(sql, key, limits, now, restart),
      { discard: true }
    )
  )

/** @since 0.1.0 */
export const make = (context: RepoContext): BudgetRepoShape => {
  const { sql, timeout } = context

  const read = (budgetId: string, lock: boolean) =>
    Effect.flatMap(
      sql<
        Record<string, unknown>
      >`SELECT budget_id, max_budget, soft_budget, budget_duration, tpm_limit, rpm_limit,
        max_parallel_requests FROM tb_budgets WHERE budget_id = ${budgetId}${
          lock ? Dialect.forUpdate(sql) : sql.literal("")
        }`,
      (rows) => Effect.map(decodeFirst(decodeRow)(rows), Option.map(toBudget))
    )

  return {
    find: Effect.fn("BudgetRepo.find")(function* (budgetId: BudgetId) {
      return yield* guard("budget.find", timeout)(read(budgetId, false))
    }),

    upsert: Effect.fn("BudgetRepo.upsert")(function* (budgetId: BudgetId, patch: Limits.LimitsPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const existing = yield* read(budgetId, true)
        const before = Option.match(existing, {
          onNone: () => Limits.none,
          onSome: (budget) => budget.limits
        })
        const limits = Limits.patch(before, patch)
        if (Option.isNone(existing)) {
          yield* sql`INSERT INTO tb_budgets ${sql.insert({
            budget_id: budgetId,
            ...limitValues(limits),
            created_at: now
          })}`
        } else {
          yield* sql`UPDATE tb_budgets SET ${sql.update(limitValues(limits))} WHERE budget_id = ${budgetId}`
        }
        yield* syncBudgetScopes(sql, budgetId, limits, now, Limits.changesDuration(before, patch))
        return new Budget({ budgetId, limits }, true)
      })
      return yield* guard("budget.upsert", timeout)(sql.withTransaction(write))
    }),

    delete: Effect.fn("BudgetRepo.delete")(function* (budgetId: BudgetId) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const existing = yield* read(budgetId, true)
        if (Option.isNone(existing)) return yield* new NotFound({ entity: "budget", id: budgetId })
        // Members that pointed at it keep no cap of their own, as a NULL link reads.
        yield* syncBudgetScopes(sql, budgetId, undefined, now, false)
        yield* sql`UPDATE tb_memberships SET budget_id = NULL WHERE budget_id = ${budgetId}`
        yield* sql`DELETE FROM tb_budgets WHERE budget_id = ${budgetId}`
      })
      return yield* guard("budget.delete", timeout)(sql.withTransaction(write))
    })
  }
}
