/**
 * Organizations in the store.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { OrganizationId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { Organization } from "../domain/Organization.js"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface OrganizationDraft {
  readonly organizationId: OrganizationId
  readonly organizationAlias: string
  readonly limits: Limits
  readonly models: ReadonlyArray<string>
  readonly blocked: boolean
}

/** Absent fields stay, `Option.none()` clears (SPEC 4). @since 0.1.0 */
export interface OrganizationPatch {
  readonly organizationAlias?: string
  readonly limits?: LimitsPatch
  readonly models?: ReadonlyArray<string>
  readonly blocked?: boolean
}

/** @since 0.1.0 */
export interface OrganizationRepoShape {
  readonly find: (id: OrganizationId) => Effect.Effect<Option.Option<Organization>, StoreError>
  readonly insert: (draft: OrganizationDraft) => Effect.Effect<Organization, AlreadyExists | StoreError>
  readonly update: (
    id: OrganizationId,
    patch: OrganizationPatch
  ) => Effect.Effect<Organization, NotFound | StoreError>
}

/** @since 0.1.0 */
export class OrganizationRepo extends Context.Tag("teambudget/OrganizationRepo")<
  OrganizationRepo,
  OrganizationRepoShape
>() {}
