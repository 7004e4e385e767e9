/** @since 0.1.0 */
import { Schema } from "effect"
import { EndUserId } from "./Ids.js"
import { Limits } from "./Limits.js"
import { SpendSnapshot } from "./Spend.js"

/** A customer of the caller, named by the `user` field of an OpenAI request. @since 0.1.0 */
export class EndUser extends Schema.Class<EndUser>("EndUser")({
  endUserId: EndUserId,
  limits: Limits,
  blocked: Schema.Boolean,
  spend: SpendSnapshot,
  createdAt: Schema.DateTimeUtcFromSelf
}) {}
