/**
 * Responses in LiteLLM's JSON shapes: money as USD numbers, dates as ISO strings,
 * `Option.none()` as `null`.
 *
 * A key is shown by its public `token_id` and its display name (`sk-...x7Qa`), never
 * by its hash. Only {@link generatedKey} carries the plaintext key, once.
 *
 * @since 0.1.0
 */
import { DateTime, Option } from "effect"
import type { Budget } from "../domain/Budget.js"
import * as BudgetDuration from "../domain/BudgetDuration.js"
import type { EndUser } from "../domain/EndUser.js"
import type { Limits } from "../domain/Limits.js"
import * as Money from "../domain/Money.js"
import type { Organization } from "../domain/Organization.js"
import type { SpendSnapshot } from "../domain/Spend.js"
import type { SpendLog } from "../domain/SpendLog.js"
import type { Team } from "../domain/Team.js"
import type { TeamMembership } from "../domain/TeamMembership.js"
import type { User } from "../domain/User.js"
import type { VirtualKey } from "../domain/VirtualKey.js"

const orNull = <A, B>(option: Option.Option<A>, f: (a: A) => B): B | null =>
  Option.match(option, { onNone: () => null, onSome: f })

const iso = (date: DateTime.Utc): string => DateTime.formatIso(date)

/** The limit fields of any scope. @since 0.1.0 */
export const limits = (value: Limits) => ({
  max_budget: orNull(value.maxBudget, Money.toUsd),
  soft_budget: orNull(value.softBudget, Money.toUsd),
  budget_duration: orNull(value.budgetDuration, BudgetDuration.format),
  tpm_limit: orNull(value.tpmLimit, (n) => n),
  rpm_limit: orNull(value.rpmLimit, (n) => n),
  max_parallel_requests: orNull(value.maxParallelRequests, (n) => n)
})

/**
 * Spend fields: `spend` is the current window's spend (LiteLLM resets `spend` each
 * window), `total_spend` the lifetime spend, `held_spend` what requests in flight hold.
 *
 * @since 0.1.0
 */
export const spend = (value: SpendSnapshot) => ({
  spend: Money.toUsd(value.current),
  total_spend: Money.toUsd(value.total),
  held_spend: Money.toUsd(value.held),
  budget_reset_at: orNull(value.resetAt, iso)
})

/** A reusable budget as LiteLLM's `litellm_budget_table`. @since 0.1.0 */
export const budget = (value: Budget) => ({
  budget_id: value.budgetId,
  ...limits(value.limits)
})

/** @since 0.1.0 */
export const team = (value: Team) => ({
  team_id: value.teamId,
  team_alias: value.teamAlias,
  organization_id: orNull(value.organizationId, (id) => id),
  ...limits(value.limits),
  models: value.models,
  blocked: value.blocked,
  metadata: value.metadata,
  ...spend(value.spend),
  created_at: iso(value.createdAt)
})

/**
 * A team membership. A member without a budget of their own has `budget_id: null`
 * and `litellm_budget_table: null`.
 *
 * @since 0.1.0
 */
export const membership = (value: TeamMembership) => ({
  team_id: value.teamId,
  user_id: value.userId,
  role: value.role,
  ...spend(value.spend),
  budget_id: orNull(value.budget, (b) => b.budgetId),
  litellm_budget_table: orNull(value.budget, budget)
})

/** A key's settings and spend, never its hash or plaintext. @since 0.1.0 */
export const key = (value: VirtualKey) => ({
  token_id: value.keyId,
  key_name: value.displayPrefix,
  key_alias: orNull(value.keyAlias, (alias) => alias),
  user_id: orNull(value.userId, (id) => id),
  team_id: orNull(value.teamId, (id) => id),
  ...limits(value.limits),
  models: value.models,
  expires: orNull(value.expires, iso),
  blocked: value.blocked,
  metadata: value.metadata,
  ...spend(value.spend),
  created_at: iso(value.createdAt)
})

/**
 * The response of `/key/generate`: the key's settings and, this once, the plaintext key.
 *
 * @since 0.1.0
 */
export const generatedKey = (value: { readonly key: VirtualKey; readonly token: string }) => ({
  key: value.token,
  ...key(value.key)
})

/** The response of `/key/info`: the key named by its `token_id`. @since 0.1.0 */
export const keyInfo = (value: VirtualKey) => ({
  key: value.keyId,
  info: key(value)
})

/** The response of `/key/delete`. @since 0.1.0 */
export const keysDeleted = (values: ReadonlyArray<VirtualKey>) => ({
  deleted_keys: values.map((value) => value.keyId)
})

/** The response of `/team/info`. @since 0.1.0 */
export const teamInfo = (value: {
  readonly team: Team
  readonly memberships: ReadonlyArray<TeamMembership>
  readonly keys: ReadonlyArray<VirtualKey>
}) => ({
  team_id: value.team.teamId,
  team_info: team(value.team),
  team_memberships: value.memberships.map(membership),
  keys: value.keys.map(key)
})

/** The response of `/team/member_add`. @since 0.1.0 */
export const membersAdded = (value: {
  readonly team: Team
  readonly users: ReadonlyArray<User>
  readonly memberships: ReadonlyArray<TeamMembership>
}) => ({
  team_id: value.team.teamId,
  team_alias: value.team.teamAlias,
  updated_users: value.users.map(user),
  updated_team_memberships: value.memberships.map(membership)
})

/** The response of `/team/member_delete`. @since 0.1.0 */
export const memberDeleted = (value: TeamMembership) => ({
  team_id: value.teamId,
  user_id: value.userId
})

/** The response of `/team/delete`. @since 0.1.0 */
export const teamsDeleted = (values: ReadonlyArray<Team>) => ({
  deleted_teams: values.map((value) => value.teamId)
})

/** @since 0.1.0 */
export const user = (value: User) => ({
  user_id: value.userId,
  user_email: orNull(value.userEmail, (email) => email),
  user_role: value.userRole,
  ...limits(value.limits),
  models: value.models,
  blocked: value.blocked,
  metadata: value.metadata,
  ...spend(value.spend),
  created_at: iso(value.createdAt)
})

/** The response of `/user/info`: the user, their teams and memberships, and their keys. @since 0.1.0 */
export const userInfo = (value: {
  readonly user: User
  readonly memberships: ReadonlyArray<TeamMembership>
  readonly teams: ReadonlyArray<Team>
  readonly keys: ReadonlyArray<VirtualKey>
}) => ({
  user_id: value.user.userId,
  user_info: user(value.user),
  teams: value.teams.map(team),
  team_memberships: value.memberships.map(membership),
  keys: value.keys.map(key)
})

/** An organization; its limits also as `litellm_budget_table`, as LiteLLM nests them. @since 0.1.0 */
export const organization = (value: Organization) => ({
  organization_id: value.organizationId,
  organization_alias: value.organizationAlias,
  ...limits(value.limits),
  litellm_budget_table: { budget_id: null, ...limits(value.limits) },
  models: value.models,
  blocked: value.blocked,
  ...spend(value.spend),
  created_at: iso(value.createdAt)
})

/** A customer (end user); `user_id` is the end user id. @since 0.1.0 */
export const customer = (value: EndUser) => ({
  user_id: value.endUserId,
  ...limits(value.limits),
  litellm_budget_table: { budget_id: null, ...limits(value.limits) },
  blocked: value.blocked,
  ...spend(value.spend),
  created_at: iso(value.createdAt)
})

/** A spend log row; the key is named by `token_id` and its label, never by its hash. @since 0.1.0 */
export const spendLog = (value: SpendLog) => ({
  request_id: value.requestId,
  token_id: value.keyId,
  key_name: value.keyLabel,
  user: orNull(value.userId, (id) => id),
  team_id: orNull(value.teamId, (id) => id),
  organization_id: orNull(value.organizationId, (id) => id),
  end_user: orNull(value.endUser, (id) => id),
  model: value.model,
  prompt_tokens: value.promptTokens,
  completion_tokens: value.completionTokens,
  total_tokens: value.promptTokens + value.completionTokens,
  spend: Money.toUsd(value.cost),
  startTime: iso(value.startedAt),
  endTime: iso(value.endedAt),
  status: value.status
})

/** The response of `/spend/logs`: a list of rows, newest first. @since 0.1.0 */
export const spendLogs = (values: ReadonlyArray<SpendLog>) => values.map(spendLog)
