/**
 * Teams in the store.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { OrganizationId, TeamId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { Metadata } from "../domain/Metadata.js"
import type { Team } from "../domain/Team.js"
import type { StoreError } from "./StoreError.js"

/** A team to create. @since 0.1.0 */
export interface TeamDraft {
  readonly teamId: TeamId
  readonly teamAlias: string
  readonly organizationId: Option.Option<OrganizationId>
  readonly limits: Limits
  readonly models: ReadonlyArray<string>
  readonly blocked: boolean
  readonly metadata: Metadata
}

/**
 * A change to a team: absent fields stay, `Option.none()` clears (SPEC 4).
 * Changing `limits.budgetDuration` starts a new window with nothing spent in it.
 *
 * @since 0.1.0
 */
export interface TeamPatch {
  readonly teamAlias?: string
  readonly organizationId?: Option.Option<OrganizationId>
  readonly limits?: LimitsPatch
  readonly models?: ReadonlyArray<string>
  readonly blocked?: boolean
  readonly metadata?: Metadata
}

/** @since 0.1.0 */
export interface TeamRepoShape {
  readonly find: (teamId: TeamId) => Effect.Effect<Option.Option<Team>, StoreError>
  readonly list: () => Effect.Effect<ReadonlyArray<Team>, StoreError>
  readonly insert: (draft: TeamDraft) => Effect.Effect<Team, AlreadyExists | StoreError>
  readonly update: (teamId: TeamId, patch: TeamPatch) => Effect.Effect<Team, NotFound | StoreError>
  /** Deletes the teams with their memberships and keys, all or none. */
  readonly delete: (teamIds: ReadonlyArray<TeamId>) => Effect.Effect<void, NotFound | StoreError>
}

/** @since 0.1.0 */
export class TeamRepo extends Context.Tag("teambudget/TeamRepo")<TeamRepo, TeamRepoShape>() {}
