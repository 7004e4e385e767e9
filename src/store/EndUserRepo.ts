/**
 * End users (customers) in the store.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { EndUser } from "../domain/EndUser.js"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { EndUserId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface EndUserDraft {
  readonly endUserId: EndUserId
  readonly limits: Limits
  readonly blocked: boolean
}

/** Absent fields stay, `Option.none()` clears (SPEC 4). @since 0.1.0 */
export interface EndUserPatch {
  readonly limits?: LimitsPatch
  readonly blocked?: boolean
}

/** @since 0.1.0 */
export interface EndUserRepoShape {
  readonly find: (id: EndUserId) => Effect.Effect<Option.Option<EndUser>, StoreError>
  readonly insert: (draft: EndUserDraft) => Effect.Effect<EndUser, AlreadyExists | StoreError>
  readonly update: (id: EndUserId, patch: EndUserPatch) => Effect.Effect<EndUser, NotFound | StoreError>
}

/** @since 0.1.0 */
export class EndUserRepo extends Context.Tag("teambudget/EndUserRepo")<EndUserRepo, EndUserRepoShape>() {}
