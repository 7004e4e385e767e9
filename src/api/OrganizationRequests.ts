/**
 * Organization requests: `/organization/new`, `/organization/update`,
 * `/organization/info`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { OrganizationId } from "../domain/Ids.js"
import {
  Alias,
  limitFields,
  limitPatchFields,
  Models,
  ModelsOrClear,
  optional,
  patchNonNull,
  required
} from "./Fields.js"

/**
 * `POST /organization/new`. `organization_id` is generated when absent.
 *
 * @example
 * decodeRequest(OrganizationNew)({ organization_alias: "acme", max_budget: 5000 })
 * @since 0.1.0
 */
export const OrganizationNew = Schema.Struct({
  organizationId: optional(OrganizationId, "organization_id"),
  organizationAlias: required(Alias, "organization_alias"),
  ...limitFields,
  models: Schema.optionalWith(Models, { nullable: true, exact: true, default: () => [] }),
  blocked: Schema.optionalWith(Schema.Boolean, { nullable: true, exact: true, default: () => false })
})
/** @since 0.1.0 */
export type OrganizationNew = typeof OrganizationNew.Type

/** `POST /organization/update`: absent fields stay, `null` clears (SPEC 4). @since 0.1.0 */
export const OrganizationUpdate = Schema.Struct({
  organizationId: required(OrganizationId, "organization_id"),
  organizationAlias: patchNonNull(Alias, "organization_alias"),
  ...limitPatchFields,
  models: patchNonNull(ModelsOrClear, "models"),
  blocked: patchNonNull(Schema.Boolean, "blocked")
})
/** @since 0.1.0 */
export type OrganizationUpdate = typeof OrganizationUpdate.Type

/** `GET /organization/info?organization_id=`. @since 0.1.0 */
export const OrganizationInfo = Schema.Struct({
  organizationId: required(OrganizationId, "organization_id")
})
/** @since 0.1.0 */
export type OrganizationInfo = typeof OrganizationInfo.Type
