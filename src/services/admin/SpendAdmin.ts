/**
 * Spend logs and the global budget (the master only).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { GlobalBudgetUpdate } from "../../api/BudgetRequests.js"
import { keyRefLabel, toLimitsPatch } from "../../api/Fields.js"
import type { SpendLogs } from "../../api/SpendRequests.js"
import { BudgetId } from "../../domain/Ids.js"
import type { Caller } from "../../domain/Principal.js"
import { GLOBAL_BUDGET_ID } from "../../store/BudgetRepo.js"
import type { SpendLogFilter } from "../../store/SpendLogRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireMaster } from "./Policy.js"

const globalBudgetId = BudgetId.make(GLOBAL_BUDGET_ID)

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { keys, spendLogs, budgets } = ports

  return {
    /** Settled requests, newest first, filtered by key, user, team and start time. */
    spendLogs: Effect.fn("Admin.spendLogs")(function* (caller: Caller, request: SpendLogs) {
      yield* requireMaster(caller, "read spend logs")
      return yield* read(ports)(
        Effect.gen(function* () {
          // A plaintext key is looked up by its hash; the log names keys by their public id.
          const ref = request.key ?? request.apiKey
          const keyId =
            ref === undefined
              ? undefined
              : ref._tag === "KeyId"
                ? ref.keyId
                : (yield* found("key", keyRefLabel(ref))(keys.find(ref.hash))).keyId
          const filter: SpendLogFilter = {
            ...(keyId === undefined ? {} : { keyId }),
            ...(request.userId === undefined ? {} : { userId: request.userId }),
            ...(request.teamId === undefined ? {} : { teamId: request.teamId }),
            ...(request.startDate === undefined ? {} : { startDate: request.startDate }),
            ...(request.endDate === undefined ? {} : { endDate: request.endDate }),
            ...(request.limit === undefined ? {} : { limit: request.limit })
          }
          return yield* spendLogs.query(filter)
        })
      )
    }),

    /** Changes the global budget, the cap over every request; created on first use. */
    globalBudgetUpdate: Effect.fn("Admin.globalBudgetUpdate")(function* (
      caller: Caller,
      request: GlobalBudgetUpdate
    ) {
      yield* requireMaster(caller, "change the global budget")
      return yield* write(ports)(budgets.upsert(globalBudgetId, toLimitsPatch(request)))
    }),

    /** The global budget, when one is set. */
    globalBudgetInfo: Effect.fn("Admin.globalBudgetInfo")(function* (caller: Caller) {
      yield* requireMaster(caller, "read the global budget")
      return yield* read(ports)(budgets.find(globalBudgetId))
    })
  }
}
