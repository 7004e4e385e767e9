/**
 * The whole memory store: plain mutable maps, made when the store's layer is built.
 * Every operation reads and writes them in one synchronous step, which is what makes
 * each operation atomic (nothing else runs in between on the one JavaScript thread).
 *
 * @since 0.1.0
 */
import type { DateTime, Option } from "effect"
import {
  BudgetId,
  type EndUserId,
  type HoldId,
  type KeyHash,
  type KeyId,
  type OrganizationId,
  type TeamId,
  type UserId
} from "../../domain/Ids.js"
import type { Limits } from "../../domain/Limits.js"
import type { Money } from "../../domain/Money.js"
import * as Scope from "../../domain/Scope.js"
import type { MemberRole } from "../../domain/TeamMembership.js"
import { GLOBAL_BUDGET_ID } from "../BudgetRepo.js"
import type { EndUserDraft } from "../EndUserRepo.js"
import type { KeyDraft } from "../KeyRepo.js"
import type { OrganizationDraft } from "../OrganizationRepo.js"
import type { SpendLogDraft } from "../SpendLedger.js"
import type { TeamDraft } from "../TeamRepo.js"
import type { UserDraft } from "../UserRepo.js"

/**
 * The spend of one scope. `anchor` is when its window length was last set: every
 * window boundary is computed from it, so windows never drift.
 *
 * @since 0.1.0
 */
export interface Counter {
  total: Money
  windowSpend: Money
  windowStart: number
  anchor: number
  held: Money
}

/** An open hold: what it holds on which counters, until when. @since 0.1.0 */
export interface OpenHold {
  readonly scopes: ReadonlyArray<Scope.ScopeRef>
  /** `Scope.key` of each scope, computed once. */
  readonly keys: ReadonlyArray<string>
  readonly amount: Money
  readonly expiresAt: number
}

/** A hold that was settled or released, kept for a while so a second close is refused. @since 0.1.0 */
export interface ClosedHold {
  readonly holdId: HoldId
  readonly state: "settled" | "released"
  readonly at: number
}

/**
 * A settled request as the ledger wrote it. The `SpendLog` entity is built only when
 * the row is read, which keeps that work off the request path.
 *
 * @since 0.1.0
 */
export interface LogRow {
  readonly draft: SpendLogDraft
  readonly cost: Money
  readonly endedAt: number
}

/** @since 0.1.0 */
export interface TeamRow extends TeamDraft {
  readonly createdAt: DateTime.Utc
}
/** @since 0.1.0 */
export interface UserRow extends UserDraft {
  readonly createdAt: DateTime.Utc
}
/** @since 0.1.0 */
export interface OrganizationRow extends OrganizationDraft {
  readonly createdAt: DateTime.Utc
}
/** @since 0.1.0 */
export interface EndUserRow extends EndUserDraft {
  readonly createdAt: DateTime.Utc
}
/** @since 0.1.0 */
export interface KeyRow extends KeyDraft {
  readonly createdAt: DateTime.Utc
}
/** @since 0.1.0 */
export interface MembershipRow {
  readonly teamId: TeamId
  readonly userId: UserId
  readonly role: MemberRole
  readonly budgetId: Option.Option<BudgetId>
}

/** @since 0.1.0 */
export interface MemoryState {
  readonly teams: Map<TeamId, TeamRow>
  readonly users: Map<UserId, UserRow>
  readonly organizations: Map<OrganizationId, OrganizationRow>
  readonly endUsers: Map<EndUserId, EndUserRow>
  readonly keys: Map<KeyHash, KeyRow>
  readonly keyHashes: Map<KeyId, KeyHash>
  /** By `Scope.key` of the membership scope. */
  readonly memberships: Map<string, MembershipRow>
  readonly budgets: Map<BudgetId, Limits>
  /** By `Scope.key`. */
  readonly counters: Map<string, Counter>
  /** In creation order, which is expiry order since the TTL is constant. */
  readonly holds: Map<HoldId, OpenHold>
  /** By hold id. */
  readonly closed: Map<HoldId, ClosedHold>
  /**
   * The same markers in closing order from `closedHead`: a queue, so forgetting the
   * oldest never walks past the ones forgotten before (a `Map` keeps holes where its
   * deleted entries were until it is rebuilt).
   */
  readonly closedOrder: Array<ClosedHold>
  closedHead: number
  readonly logs: Array<LogRow>
  readonly holdTtlMillis: number
  readonly logCapacity: number
}

/** @since 0.1.0 */
export const make = (holdTtlMillis: number, logCapacity: number): MemoryState => ({
  teams: new Map(),
  users: new Map(),
  organizations: new Map(),
  endUsers: new Map(),
  keys: new Map(),
  keyHashes: new Map(),
  memberships: new Map(),
  budgets: new Map(),
  counters: new Map(),
  holds: new Map(),
  closed: new Map(),
  closedOrder: [],
  closedHead: 0,
  logs: [],
  holdTtlMillis,
  logCapacity
})

/** The id of the global budget, branded. @since 0.1.0 */
export const globalBudgetId: BudgetId = BudgetId.make(GLOBAL_BUDGET_ID)

/** @since 0.1.0 */
export const membershipKey = (teamId: TeamId, userId: UserId): string =>
  Scope.key({ kind: "membership", teamId, userId })

/**
 * The limits of a scope as stored right now, or `undefined` when it has none (no
 * row, or a membership without a budget of its own).
 *
 * @since 0.1.0
 */
export const limitsOf = (state: MemoryState, ref: Scope.ScopeRef): Limits | undefined => {
  switch (ref.kind) {
    case "key":
      return state.keys.get(ref.id)?.limits
    case "user":
      return state.users.get(ref.id)?.limits
    case "membership": {
      const row = state.memberships.get(Scope.key(ref))
      return row !== undefined && row.budgetId._tag === "Some"
        ? state.budgets.get(row.budgetId.value)
        : undefined
    }
    case "team":
      return state.teams.get(ref.id)?.limits
    case "organization":
      return state.organizations.get(ref.id)?.limits
    case "end_user":
      return state.endUsers.get(ref.id)?.limits
    case "global":
      return state.budgets.get(globalBudgetId)
  }
}
