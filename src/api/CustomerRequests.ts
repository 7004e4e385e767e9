/**
 * Customer (end user) requests: `/customer/new`, `/customer/update`,
 * `/customer/info`. `user_id` is the end user id: the `user` field of an OpenAI
 * request.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { EndUserId } from "../domain/Ids.js"
import { limitFields, limitPatchFields, patchNonNull, required } from "./Fields.js"

/**
 * `POST /customer/new`.
 *
 * @example
 * decodeRequest(CustomerNew)({ user_id: "customer-42", max_budget: 5, budget_duration: "1d" })
 * @since 0.1.0
 */
export const CustomerNew = Schema.Struct({
  endUserId: required(EndUserId, "user_id"),
  ...limitFields,
  blocked: Schema.optionalWith(Schema.Boolean, { nullable: true, exact: true, default: () => false })
})
/** @since 0.1.0 */
export type CustomerNew = typeof CustomerNew.Type

/** `POST /customer/update`: absent fields stay, `null` clears (SPEC 4). @since 0.1.0 */
export const CustomerUpdate = Schema.Struct({
  endUserId: required(EndUserId, "user_id"),
  ...limitPatchFields,
  blocked: patchNonNull(Schema.Boolean, "blocked")
})
/** @since 0.1.0 */
export type CustomerUpdate = typeof CustomerUpdate.Type

/**
 * `GET /customer/info?end_user_id=` (LiteLLM's name; `user_id` is accepted too).
 *
 * @since 0.1.0
 */
export const CustomerInfo = Schema.Union(
  Schema.Struct({ endUserId: required(EndUserId, "end_user_id") }),
  Schema.Struct({ endUserId: required(EndUserId, "user_id") })
)
/** @since 0.1.0 */
export type CustomerInfo = typeof CustomerInfo.Type
