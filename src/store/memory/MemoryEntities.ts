/**
 * Rows of the memory store as entities, each with its spend as of now.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import { Budget } from "../../domain/Budget.js"
import { EndUser } from "../../domain/EndUser.js"
import type { KeyHash, TeamId, UserId } from "../../domain/Ids.js"
import { Organization } from "../../domain/Organization.js"
import * as Scope from "../../domain/Scope.js"
import { Team } from "../../domain/Team.js"
import { TeamMembership } from "../../domain/TeamMembership.js"
import { User } from "../../domain/User.js"
import { VirtualKey } from "../../domain/VirtualKey.js"
import { snapshot } from "./MemoryCounters.js"
import type {
  EndUserRow,
  KeyRow,
  MembershipRow,
  MemoryState,
  OrganizationRow,
  TeamRow,
  UserRow
} from "./MemoryState.js"

/** @since 0.1.0 */
export const teamKey = (id: TeamId): string => Scope.key({ kind: "team", id })
/** @since 0.1.0 */
export const userKey = (id: UserId): string => Scope.key({ kind: "user", id })
/** The label plays no part in the key. @since 0.1.0 */
export const keyKey = (id: KeyHash): string => Scope.key({ kind: "key", id, label: "" })

// Rows hold values that were typed on the way in, so entities are built without re-validation.

/** @since 0.1.0 */
export const toTeam = (state: MemoryState, row: TeamRow, now: number): Team =>
  new Team({ ...row, spend: snapshot(state, teamKey(row.teamId), row.limits, now) }, true)

/** @since 0.1.0 */
export const toUser = (state: MemoryState, row: UserRow, now: number): User =>
  new User({ ...row, spend: snapshot(state, userKey(row.userId), row.limits, now) }, true)

/** @since 0.1.0 */
export const toOrganization = (state: MemoryState, row: OrganizationRow, now: number): Organization =>
  new Organization(
    {
      ...row,
      spend: snapshot(state, Scope.key({ kind: "organization", id: row.organizationId }), row.limits, now)
    },
    true
  )

/** @since 0.1.0 */
export const toEndUser = (state: MemoryState, row: EndUserRow, now: number): EndUser =>
  new EndUser(
    { ...row, spend: snapshot(state, Scope.key({ kind: "end_user", id: row.endUserId }), row.limits, now) },
    true
  )

/** @since 0.1.0 */
export const toKey = (state: MemoryState, row: KeyRow, now: number): VirtualKey =>
  new VirtualKey({ ...row, spend: snapshot(state, keyKey(row.hash), row.limits, now) }, true)

/** A membership whose budget row is gone reads as one without a budget. @since 0.1.0 */
export const toMembership = (
  state: MemoryState,
  key: string,
  row: MembershipRow,
  now: number
): TeamMembership => {
  const budgetId = Option.getOrUndefined(row.budgetId)
  const limits = budgetId === undefined ? undefined : state.budgets.get(budgetId)
  const budget =
    budgetId === undefined || limits === undefined
      ? Option.none()
      : Option.some(new Budget({ budgetId, limits }, true))
  return new TeamMembership(
    {
      teamId: row.teamId,
      userId: row.userId,
      role: row.role,
      spend: snapshot(state, key, limits, now),
      budget
    },
    true
  )
}
