/**
 * The ledger: the only place spend moves. It places a hold on every scope of a
 * request at once (all or nothing), settles it with the real cost, or releases it.
 *
 * Limits are read from the store in the same atomic step as the counters, never
 * from a cache. Budget windows (SPEC 6) reset lazily inside that step. Holds expire
 * after a TTL so a crashed caller never leaks budget.
 *
 * @since 0.1.0
 */
import { Context, type DateTime, type Effect, type Option } from "effect"
import type { BudgetExceeded, HoldClosed } from "../domain/Errors.js"
import type {
  EndUserId,
  HoldId,
  KeyHash,
  KeyId,
  OrganizationId,
  RequestId,
  TeamId,
  UserId
} from "../domain/Ids.js"
import type { Money } from "../domain/Money.js"
import type { ScopeRef } from "../domain/Scope.js"
import type { SpendSnapshot } from "../domain/Spend.js"
import type { SpendStatus } from "../domain/SpendLog.js"
import type { StoreError } from "./StoreError.js"

/**
 * `strict` holds the worst case before the call: `current + held + amount <= max`
 * on every binding scope. `optimistic` only checks `current < max` and charges after
 * (SPEC 7).
 *
 * @since 0.1.0
 */
export type Mode = "strict" | "optimistic"

/** @since 0.1.0 */
export interface HoldRequest {
  readonly holdId: HoldId
  /** Every scope of the request that exists, in {@link ORDER}; a scope binds only where it has a cap. */
  readonly scopes: ReadonlyArray<ScopeRef>
  /** The worst-case cost. */
  readonly amount: Money
  readonly mode: Mode
}

/** How much a binding scope has left. @since 0.1.0 */
export interface Headroom {
  readonly scope: ScopeRef
  readonly remaining: Money
  readonly maxBudget: Money
  readonly resetAt: Option.Option<DateTime.Utc>
}

/** @since 0.1.0 */
export interface Hold {
  readonly holdId: HoldId
  readonly scopes: ReadonlyArray<ScopeRef>
  /** What is held: the estimate in strict mode, zero in optimistic mode. */
  readonly amount: Money
  readonly expiresAt: DateTime.Utc
  /** The binding scope with the least left after this hold, when any scope binds. */
  readonly tightest: Option.Option<Headroom>
}

/** The spend log row of a settlement, less what the ledger fills in (cost, end time). @since 0.1.0 */
export interface SpendLogDraft {
  readonly requestId: RequestId
  readonly keyId: KeyId
  readonly keyHash: KeyHash
  readonly keyLabel: string
  readonly userId: Option.Option<UserId>
  readonly teamId: Option.Option<TeamId>
  readonly organizationId: Option.Option<OrganizationId>
  readonly endUser: Option.Option<EndUserId>
  readonly model: string
  readonly promptTokens: number
  readonly completionTokens: number
  readonly startedAt: DateTime.Utc
  readonly status: SpendStatus
}

/** @since 0.1.0 */
export interface Settlement {
  readonly cost: Money
  /** The hold had expired and been reclaimed before the settlement came; the cost was charged all the same. */
  readonly late: boolean
  readonly tightest: Option.Option<Headroom>
}

/** @since 0.1.0 */
export interface SpendLedgerShape {
  /**
   * Holds `amount` on every scope, or refuses naming the first binding scope (in scope
   * order) that cannot take it. A refusal holds nothing and makes no counter, not even
   * for a scope it is the first to name (an end user known only from a request), so
   * refused requests never grow the store; at most what time has already decided is
   * brought up to date (a window that has ended, holds that have expired).
   */
  readonly hold: (request: HoldRequest) => Effect.Effect<Hold, BudgetExceeded | StoreError>
  /**
   * Replaces the hold with the real cost on every scope and writes the spend log
   * row, in one atomic step. A hold that expired is charged all the same.
   */
  readonly settle: (
    hold: Hold,
    cost: Money,
    log: SpendLogDraft
  ) => Effect.Effect<Settlement, HoldClosed | StoreError>
  /** Gives the held amount back (a failed upstream call). Releasing an expired hold is a no-op. */
  readonly release: (hold: Hold) => Effect.Effect<void, HoldClosed | StoreError>
  /** Reclaims every expired hold now; returns how many. Holds are also reclaimed lazily. */
  readonly reclaimExpired: () => Effect.Effect<number, StoreError>
  /** The spend of one scope, its window reset applied as of now. */
  readonly spendOf: (scope: ScopeRef) => Effect.Effect<SpendSnapshot, StoreError>
}

/** @since 0.1.0 */
export class SpendLedger extends Context.Tag("teambudget/SpendLedger")<SpendLedger, SpendLedgerShape>() {}
