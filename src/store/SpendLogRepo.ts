/**
 * Reading the spend log. Rows are written by {@link SpendLedger} when it settles.
 *
 * @since 0.1.0
 */
import { Context, type DateTime, type Effect } from "effect"
import type { KeyId, TeamId, UserId } from "../domain/Ids.js"
import type { SpendLog } from "../domain/SpendLog.js"
import type { StoreError } from "./StoreError.js"

/** Every filter is optional; dates bound `startedAt`, start inclusive, end exclusive. @since 0.1.0 */
export interface SpendLogFilter {
  readonly keyId?: KeyId
  readonly userId?: UserId
  readonly teamId?: TeamId
  readonly startDate?: DateTime.Utc
  readonly endDate?: DateTime.Utc
  /** At most this many rows, newest first. Default 1000. */
  readonly limit?: number
}

/** @since 0.1.0 */
export interface SpendLogRepoShape {
  readonly query: (filter: SpendLogFilter) => Effect.Effect<ReadonlyArray<SpendLog>, StoreError>
}

/** @since 0.1.0 */
export class SpendLogRepo extends Context.Tag("teambudget/SpendLogRepo")<SpendLogRepo, SpendLogRepoShape>() {}
