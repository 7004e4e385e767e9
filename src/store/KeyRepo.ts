/**
 * Virtual keys in the store, found by the hash of their token.
 *
 * @since 0.1.0
 */
import { Context, type DateTime, type Effect, type Option } from "effect"
import type { AlreadyExists, NotFound } from "../domain/Errors.js"
import type { KeyHash, KeyId, TeamId, UserId } from "../domain/Ids.js"
import type { Limits, LimitsPatch } from "../domain/Limits.js"
import type { Metadata } from "../domain/Metadata.js"
import type { VirtualKey } from "../domain/VirtualKey.js"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface KeyDraft {
  readonly keyId: KeyId
  readonly hash: KeyHash
  readonly keyAlias: Option.Option<string>
  readonly displayPrefix: string
  readonly userId: Option.Option<UserId>
  readonly teamId: Option.Option<TeamId>
  readonly limits: Limits
  readonly models: ReadonlyArray<string>
  readonly expires: Option.Option<DateTime.Utc>
  readonly blocked: boolean
  readonly metadata: Metadata
}

/** Absent fields stay, `Option.none()` clears (SPEC 4). @since 0.1.0 */
export interface KeyPatch {
  readonly keyAlias?: Option.Option<string>
  readonly userId?: Option.Option<UserId>
  readonly teamId?: Option.Option<TeamId>
  readonly limits?: LimitsPatch
  readonly models?: ReadonlyArray<string>
  readonly expires?: Option.Option<DateTime.Utc>
  readonly blocked?: boolean
  readonly metadata?: Metadata
}

/** @since 0.1.0 */
export interface KeyRepoShape {
  readonly find: (hash: KeyHash) => Effect.Effect<Option.Option<VirtualKey>, StoreError>
  readonly findById: (keyId: KeyId) => Effect.Effect<Option.Option<VirtualKey>, StoreError>
  readonly listByTeam: (teamId: TeamId) => Effect.Effect<ReadonlyArray<VirtualKey>, StoreError>
  readonly listByUser: (userId: UserId) => Effect.Effect<ReadonlyArray<VirtualKey>, StoreError>
  /** Keys whose expiry is after `after` and at or before `until`, soonest first. */
  readonly listExpiring: (
    after: DateTime.Utc,
    until: DateTime.Utc
  ) => Effect.Effect<ReadonlyArray<VirtualKey>, StoreError>
  readonly insert: (draft: KeyDraft) => Effect.Effect<VirtualKey, AlreadyExists | StoreError>
  readonly update: (hash: KeyHash, patch: KeyPatch) => Effect.Effect<VirtualKey, NotFound | StoreError>
  /** Deletes all the keys or none. */
  readonly delete: (hashes: ReadonlyArray<KeyHash>) => Effect.Effect<void, NotFound | StoreError>
}

/** @since 0.1.0 */
export class KeyRepo extends Context.Tag("teambudget/KeyRepo")<KeyRepo, KeyRepoShape>() {}
