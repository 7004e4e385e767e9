/** @since 0.1.0 */
import { Schema } from "effect"
import { UserId } from "./Ids.js"
import { Limits } from "./Limits.js"
import { Metadata } from "./Metadata.js"
import { SpendSnapshot } from "./Spend.js"

/** LiteLLM's user roles. @since 0.1.0 */
export const UserRole = Schema.Literal(
  "proxy_admin",
  "proxy_admin_viewer",
  "internal_user",
  "internal_user_viewer",
  "customer"
)
/** @since 0.1.0 */
export type UserRole = typeof UserRole.Type

/** A user: a person (or service) that owns keys and joins teams. @since 0.1.0 */
export class User extends Schema.Class<User>("User")({
  userId: UserId,
  userEmail: Schema.OptionFromSelf(Schema.String),
  userRole: UserRole,
  limits: Limits,
  /** Models the user's own keys may use; empty means all. */
  models: Schema.Array(Schema.String),
  blocked: Schema.Boolean,
  metadata: Metadata,
  spend: SpendSnapshot,
  createdAt: Schema.DateTimeUtcFromSelf
}) {}
