/**
 * Virtual key requests: `/key/generate`, `/key/update`, `/key/info`, `/key/delete`,
 * `/key/block`, `/key/unblock`. A `key` parameter is the plaintext key or its
 * public `token_id`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { TeamId, UserId } from "../domain/Ids.js"
import {
  Alias,
  Duration,
  KeyRefFromString,
  limitFields,
  limitPatchFields,
  Meta,
  MetaOrClear,
  Models,
  ModelsOrClear,
  optional,
  patch,
  patchNonNull,
  required
} from "./Fields.js"

/**
 * `POST /key/generate`. `duration` is how long the key lives (`"30d"`); without it
 * the key never expires.
 *
 * @example
 * decodeRequest(KeyGenerate)({ team_id: "research", user_id: "alice", duration: "30d" })
 * @since 0.1.0
 */
export const KeyGenerate = Schema.Struct({
  userId: optional(UserId, "user_id"),
  teamId: optional(TeamId, "team_id"),
  keyAlias: optional(Alias, "key_alias"),
  ...limitFields,
  models: Schema.optionalWith(Models, { nullable: true, exact: true, default: () => [] }),
  duration: optional(Duration, "duration"),
  metadata: Schema.optionalWith(Meta, { nullable: true, exact: true, default: () => ({}) }),
  blocked: Schema.optionalWith(Schema.Boolean, { nullable: true, exact: true, default: () => false })
})
/** @since 0.1.0 */
export type KeyGenerate = typeof KeyGenerate.Type

/**
 * `POST /key/update`: absent fields stay, `null` clears (SPEC 4). `duration: null`
 * makes the key never expire; a duration sets the expiry that long from now.
 *
 * @since 0.1.0
 */
export const KeyUpdate = Schema.Struct({
  key: required(KeyRefFromString, "key"),
  userId: patch(UserId, "user_id"),
  teamId: patch(TeamId, "team_id"),
  keyAlias: patch(Alias, "key_alias"),
  ...limitPatchFields,
  models: patchNonNull(ModelsOrClear, "models"),
  duration: patch(Duration, "duration"),
  metadata: patchNonNull(MetaOrClear, "metadata"),
  blocked: patchNonNull(Schema.Boolean, "blocked")
})
/** @since 0.1.0 */
export type KeyUpdate = typeof KeyUpdate.Type

/** `GET /key/info?key=`: without `key`, the caller's own key. @since 0.1.0 */
export const KeyInfo = Schema.Struct({
  key: optional(KeyRefFromString, "key")
})
/** @since 0.1.0 */
export type KeyInfo = typeof KeyInfo.Type

/** `POST /key/delete`: all the keys or none. @since 0.1.0 */
export const KeyDelete = Schema.Struct({
  keys: required(
    Schema.Array(KeyRefFromString).pipe(
      Schema.minItems(1, { message: () => "must name at least one key" }),
      Schema.maxItems(1000, { message: () => "must name at most 1000 keys" })
    ),
    "keys"
  )
})
/** @since 0.1.0 */
export type KeyDelete = typeof KeyDelete.Type

/** `POST /key/block` and `POST /key/unblock`. @since 0.1.0 */
export const KeyBlock = Schema.Struct({
  key: required(KeyRefFromString, "key")
})
/** @since 0.1.0 */
export type KeyBlock = typeof KeyBlock.Type
