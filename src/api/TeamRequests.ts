/**
 * Team requests: `/team/new`, `/team/update`, `/team/member_*`, `/team/info`,
 * `/team/delete`, with LiteLLM's field names.
 *
 * @since 0.1.0
 */
import { Effect, ParseResult, Schema } from "effect"
import { OrganizationId, TeamId, UserId } from "../domain/Ids.js"
import { MemberRole } from "../domain/TeamMembership.js"
import {
  Alias,
  Count,
  Duration,
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
  required,
  Usd
} from "./Fields.js"

/**
 * `POST /team/new`. `team_id` is generated when absent.
 *
 * @example
 * decodeRequest(TeamNew)({ team_alias: "research", max_budget: 1000, budget_duration: "30d" })
 * @since 0.1.0
 */
export const TeamNew = Schema.Struct({
  teamId: optional(TeamId, "team_id"),
  teamAlias: required(Alias, "team_alias"),
  organizationId: optional(OrganizationId, "organization_id"),
  ...limitFields,
  models: Schema.optionalWith(Models, { nullable: true, exact: true, default: () => [] }),
  blocked: Schema.optionalWith(Schema.Boolean, { nullable: true, exact: true, default: () => false }),
  metadata: Schema.optionalWith(Meta, { nullable: true, exact: true, default: () => ({}) })
})
/** @since 0.1.0 */
export type TeamNew = typeof TeamNew.Type

/**
 * `POST /team/update`: absent fields stay, `null` clears (SPEC 4). `team_alias` and
 * `blocked` cannot be cleared.
 *
 * @since 0.1.0
 */
export const TeamUpdate = Schema.Struct({
  teamId: required(TeamId, "team_id"),
  teamAlias: patchNonNull(Alias, "team_alias"),
  organizationId: patch(OrganizationId, "organization_id"),
  ...limitPatchFields,
  models: patchNonNull(ModelsOrClear, "models"),
  blocked: patchNonNull(Schema.Boolean, "blocked"),
  metadata: patchNonNull(MetaOrClear, "metadata")
})
/** @since 0.1.0 */
export type TeamUpdate = typeof TeamUpdate.Type

const Role = MemberRole.annotations({
  message: () => ({ message: 'must be "admin" or "user"', override: true })
})

/** One member to add: `role` defaults to `user`. @since 0.1.0 */
export const Member = Schema.Struct({
  userId: required(UserId, "user_id"),
  role: Schema.optionalWith(Role, { nullable: true, exact: true, default: () => "user" }),
  userEmail: optional(Email, "user_email")
})
/** @since 0.1.0 */
export type Member = typeof Member.Type

const Members = Schema.Array(Member).pipe(
  Schema.minItems(1, { message: () => "must name at least one member" }),
  Schema.maxItems(1000, { message: () => "must name at most 1000 members" })
)

const decodeMembers = ParseResult.decodeUnknown(Members)
const decodeMember = ParseResult.decodeUnknown(Member)

/** `member`: one object or a list of them, always a list once decoded. @since 0.1.0 */
export const OneOrMoreMembers = Schema.transformOrFail(Schema.Unknown, Schema.typeSchema(Members), {
  strict: true,
  // Dispatching on the shape reports a bad field at its own path, where a union
  // would report that the object is not a list.
  decode: (input, options) =>
    Array.isArray(input)
      ? decodeMembers(input, options)
      : decodeMember(input, options).pipe(Effect.map((member) => [member])),
  encode: (members, options) => ParseResult.encode(Members)(members, options)
})

/**
 * `POST /team/member_add`. Users that do not exist yet are created; with
 * `max_budget_in_team` each new member gets a budget of their own.
 *
 * @since 0.1.0
 */
export const TeamMemberAdd = Schema.Struct({
  teamId: required(TeamId, "team_id"),
  members: required(OneOrMoreMembers, "member"),
  maxBudgetInTeam: optional(Usd, "max_budget_in_team")
})
/** @since 0.1.0 */
export type TeamMemberAdd = typeof TeamMemberAdd.Type

/**
 * `POST /team/member_update`: the member's role and own limits. `max_budget_in_team:
 * null` removes the member's cap (SPEC 1); the team pool still binds.
 *
 * @since 0.1.0
 */
export const TeamMemberUpdate = Schema.Struct({
  teamId: required(TeamId, "team_id"),
  userId: required(UserId, "user_id"),
  role: patchNonNull(Role, "role"),
  maxBudget: patch(Usd, "max_budget_in_team"),
  budgetDuration: patch(Duration, "budget_duration"),
  tpmLimit: patch(Count, "tpm_limit"),
  rpmLimit: patch(Count, "rpm_limit")
})
/** @since 0.1.0 */
export type TeamMemberUpdate = typeof TeamMemberUpdate.Type

/** `POST /team/member_delete`. @since 0.1.0 */
export const TeamMemberDelete = Schema.Struct({
  teamId: required(TeamId, "team_id"),
  userId: required(UserId, "user_id")
})
/** @since 0.1.0 */
export type TeamMemberDelete = typeof TeamMemberDelete.Type

/** `GET /team/info?team_id=`. @since 0.1.0 */
export const TeamInfo = Schema.Struct({
  teamId: required(TeamId, "team_id")
})
/** @since 0.1.0 */
export type TeamInfo = typeof TeamInfo.Type

/** `POST /team/delete`: the teams go with their memberships and keys. @since 0.1.0 */
export const TeamDelete = Schema.Struct({
  teamIds: required(
    Schema.Array(TeamId).pipe(
      Schema.minItems(1, { message: () => "must name at least one team" }),
      Schema.maxItems(1000, { message: () => "must name at most 1000 teams" })
    ),
    "team_ids"
  )
})
/** @since 0.1.0 */
export type TeamDelete = typeof TeamDelete.Type
