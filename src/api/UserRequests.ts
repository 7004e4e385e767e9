/**
 * User requests: `/user/new`, `/user/update`, `/user/info`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { UserId } from "../domain/Ids.js"
import { UserRole } from "../domain/User.js"
import {
  Email,
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

const Role = UserRole.annotations({
  message: () => ({
    message: `must be one of ${UserRole.literals.map((role) => JSON.stringify(role)).join(", ")}`,
    override: true
  })
})

/**
 * `POST /user/new`. `user_id` is generated when absent; `user_role` defaults to
 * `internal_user`.
 *
 * @example
 * decodeRequest(UserNew)({ user_id: "alice", max_budget: 20, budget_duration: "1mo" })
 * @since 0.1.0
 */
export const UserNew = Schema.Struct({
  userId: optional(UserId, "user_id"),
  userEmail: optional(Email, "user_email"),
  userRole: Schema.optionalWith(Role, { nullable: true, exact: true, default: () => "internal_user" }).pipe(
    Schema.fromKey("user_role")
  ),
  ...limitFields,
  models: Schema.optionalWith(Models, { nullable: true, exact: true, default: () => [] }),
  blocked: Schema.optionalWith(Schema.Boolean, { nullable: true, exact: true, default: () => false }),
  metadata: Schema.optionalWith(Meta, { nullable: true, exact: true, default: () => ({}) })
})
/** @since 0.1.0 */
export type UserNew = typeof UserNew.Type

/** `POST /user/update`: absent fields stay, `null` clears (SPEC 4). @since 0.1.0 */
export const UserUpdate = Schema.Struct({
  userId: required(UserId, "user_id"),
  userEmail: patch(Email, "user_email"),
  userRole: patchNonNull(Role, "user_role"),
  ...limitPatchFields,
  models: patchNonNull(ModelsOrClear, "models"),
  blocked: patchNonNull(Schema.Boolean, "blocked"),
  metadata: patchNonNull(MetaOrClear, "metadata")
})
/** @since 0.1.0 */
export type UserUpdate = typeof UserUpdate.Type

/** `GET /user/info?user_id=`. @since 0.1.0 */
export const UserInfo = Schema.Struct({
  userId: required(UserId, "user_id")
})
/** @since 0.1.0 */
export type UserInfo = typeof UserInfo.Type
