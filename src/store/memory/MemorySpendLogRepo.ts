/**
 * Reading the spend log of the memory store.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Option } from "effect"
import { SpendLog } from "../../domain/SpendLog.js"
import type { SpendLogFilter, SpendLogRepoShape } from "../SpendLogRepo.js"
import type { LogRow, MemoryState } from "./MemoryState.js"

const DEFAULT_LIMIT = 1000

const matches = ({ draft: row }: LogRow, filter: SpendLogFilter): boolean =>
  (filter.keyId === undefined || row.keyId === filter.keyId) &&
  (filter.userId === undefined || Option.contains(row.userId, filter.userId)) &&
  (filter.teamId === undefined || Option.contains(row.teamId, filter.teamId)) &&
  (filter.startDate === undefined || row.startedAt.epochMillis >= filter.startDate.epochMillis) &&
  (filter.endDate === undefined || row.startedAt.epochMillis < filter.endDate.epochMillis)

/** @since 0.1.0 */
export const make = (state: MemoryState): SpendLogRepoShape => ({
  query: Effect.fn("SpendLogRepo.query")((filter: SpendLogFilter) =>
    Effect.sync(() => {
      const { logs, logCapacity } = state
      const oldest = Math.max(0, logs.length - logCapacity)
      const rows: Array<LogRow> = []
      // Newest settled first, so the stable sort below breaks ties of `startedAt` that way.
      for (let i = logs.length - 1; i >= oldest; i--) {
        const row = logs[i]
        if (row !== undefined && matches(row, filter)) rows.push(row)
      }
      rows.sort((a, b) => b.draft.startedAt.epochMillis - a.draft.startedAt.epochMillis)
      return rows
        .slice(0, Math.max(0, filter.limit ?? DEFAULT_LIMIT))
        .map(
          ({ draft, cost, endedAt }) =>
            new SpendLog({ ...draft, cost, endedAt: DateTime.unsafeMake(endedAt) }, true)
        )
    })
  )
})
