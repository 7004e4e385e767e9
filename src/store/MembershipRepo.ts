/**
 * Team memberships in the store. A member's own budget is a reusable budget row the
 * membership points at, or nothing: a membership without one reads as
 * `budget: Option.none()` and only the team pool binds.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { TeamId, UserId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { MemberRole, TeamMembership } from "../domain/TeamMembership.js"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface MemberDraft {
  readonly userId: UserId
  readonly role: MemberRole
  /** The member's own limits; `Option.none()` for none (the team pool binds). */
  readonly limits: Option.Option<Limits>
}

/**
 * A change to a membership. `limits` is applied to the member's own budget (created
 * when there was none). When no limit is left afterwards, the membership's budget
 * becomes `Option.none()`.
 *
 * @since 0.1.0
 */
export interface MembershipPatch {
  readonly role?: MemberRole
  readonly limits?: LimitsPatch
}

/** @since 0.1.0 */
export interface MembershipRepoShape {
  readonly find: (teamId: TeamId, userId: UserId) => Effect.Effect<Option.Option<TeamMembership>, StoreError>
  readonly listByTeam: (teamId: TeamId) => Effect.Effect<ReadonlyArray<TeamMembership>, StoreError>
  readonly listByUser: (userId: UserId) => Effect.Effect<ReadonlyArray<TeamMembership>, StoreError>
  /** Adds all the members or none; the users must exist, the team too. */
  readonly add: (
    teamId: TeamId,
    members: ReadonlyArray<MemberDraft>
  ) => Effect.Effect<ReadonlyArray<TeamMembership>, AlreadyExists | NotFound | StoreError>
  readonly update: (
    teamId: TeamId,
    userId: UserId,
    patch: MembershipPatch
  ) => Effect.Effect<TeamMembership, NotFound | StoreError>
  readonly remove: (teamId: TeamId, userId: UserId) => Effect.Effect<void, NotFound | StoreError>
}

/** @since 0.1.0 */
export class MembershipRepo extends Context.Tag("teambudget/MembershipRepo")<
  MembershipRepo,
  MembershipRepoShape
>() {}
