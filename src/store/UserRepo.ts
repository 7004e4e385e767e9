/**
 * Users in the store.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { UserId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { Metadata } from "../domain/Metadata.js"
import type { User, UserRole } from "../domain/User.js"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface UserDraft {
  readonly userId: UserId
  readonly userEmail: Option.Option<string>
  readonly userRole: UserRole
  readonly limits: Limits
  readonly models: ReadonlyArray<string>
  readonly blocked: boolean
  readonly metadata: Metadata
}

/** Absent fields stay, `Option.none()` clears (SPEC 4). @since 0.1.0 */
export interface UserPatch {
  readonly userEmail?: Option.Option<string>
  readonly userRole?: UserRole
  readonly limits?: LimitsPatch
  readonly models?: ReadonlyArray<string>
  readonly blocked?: boolean
  readonly metadata?: Metadata
}

/** @since 0.1.0 */
export interface UserRepoShape {
  readonly find: (userId: UserId) => Effect.Effect<Option.Option<User>, StoreError>
  readonly insert: (draft: UserDraft) => Effect.Effect<User, AlreadyExists | StoreError>
  readonly update: (userId: UserId, patch: UserPatch) => Effect.Effect<User, NotFound | StoreError>
}

/** @since 0.1.0 */
export class UserRepo extends Context.Tag("teambudget/UserRepo")<UserRepo, UserRepoShape>() {}
