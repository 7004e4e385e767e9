/**
 * `GET /spend/logs` filters.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { TeamId, UserId } from "../domain/Ids.js"
import { IsoDate, KeyRefFromString, patchNonNull } from "./Fields.js"

// A query string carries the limit as text; an in-process caller may pass a number.
const Limit = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
  Schema.int({ message: () => "must be a whole number" }),
  Schema.between(1, 10_000, { message: () => "must be between 1 and 10000" })
)

/**
 * `GET /spend/logs?key=&user_id=&team_id=&start_date=&end_date=`. The key may be
 * given as `key` or, as LiteLLM also accepts, `api_key` (not both). Dates bound the
 * request start: `start_date` inclusive, `end_date` exclusive.
 *
 * @example
 * decodeRequest(SpendLogs)({ team_id: "research", start_date: "2025-01-01" })
 * @since 0.1.0
 */
export const SpendLogs = Schema.Struct({
  key: patchNonNull(KeyRefFromString, "key"),
  apiKey: patchNonNull(KeyRefFromString, "api_key"),
  userId: patchNonNull(UserId, "user_id"),
  teamId: patchNonNull(TeamId, "team_id"),
  startDate: patchNonNull(IsoDate, "start_date"),
  endDate: patchNonNull(IsoDate, "end_date"),
  limit: patchNonNull(Limit, "limit")
}).pipe(
  Schema.filter((filter) =>
    filter.key !== undefined && filter.apiKey !== undefined
      ? { path: ["api_key"], message: "give the key as key or as api_key, not both" }
      : undefined
  )
)
/** @since 0.1.0 */
export type SpendLogs = typeof SpendLogs.Type
