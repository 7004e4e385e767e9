/**
 * Budget events: a soft budget crossed, 50 / 80 / 100 % of a max budget reached, a
 * budget window reset, a key about to expire. One schema serves the Effect `Stream`,
 * the Promise callback and the webhook body, so they always agree.
 *
 * The JSON form uses snake_case fields, a `type` field naming the event, USD amounts
 * as numbers and ISO-8601 times. A key is named by its public `token_id`, never by
 * its hash.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Money from "./Money.js"
import { ScopeKind } from "./Scope.js"

const snake = <S extends Schema.Schema.Any>(schema: S, key: string) =>
  schema.pipe(Schema.propertySignature, Schema.fromKey(key))

/**
 * The scope an event is about: its kind and public id (a key's `token_id`, a
 * membership's `team_id/user_id`, `global` for the global budget).
 *
 * @since 0.1.0
 */
export const EventScope = Schema.Struct({ kind: ScopeKind, id: Schema.String })
/** @since 0.1.0 */
export type EventScope = typeof EventScope.Type

const common = {
  /** Deterministic: every instance that sees the same crossing computes the same id. */
  eventId: snake(Schema.String, "event_id"),
  scope: EventScope,
  occurredAt: snake(Schema.DateTimeUtc, "occurred_at")
}

const windowEndsAt = snake(Schema.OptionFromNullOr(Schema.DateTimeUtc), "window_ends_at")

/** The percentages of `max_budget` that raise an event. @since 0.1.0 */
export const PERCENTS = [50, 80, 100] as const

/** @since 0.1.0 */
export type Percent = (typeof PERCENTS)[number]

/**
 * The spend of a scope reached its `soft_budget` (in the current window, when it has one).
 *
 * @since 0.1.0
 */
export class SoftBudgetCrossed extends Schema.Class<SoftBudgetCrossed>("SoftBudgetCrossed")({
  _tag: Schema.tag("SoftBudgetCrossed").pipe(Schema.fromKey("type")),
  ...common,
  spend: Money.Usd,
  softBudget: snake(Money.Usd, "soft_budget"),
  windowEndsAt
}) {}

/**
 * The spend of a scope reached 50, 80 or 100 % of its `max_budget`.
 *
 * @since 0.1.0
 */
export class BudgetThresholdReached extends Schema.Class<BudgetThresholdReached>("BudgetThresholdReached")({
  _tag: Schema.tag("BudgetThresholdReached").pipe(Schema.fromKey("type")),
  ...common,
  percent: Schema.Literal(...PERCENTS),
  spend: Money.Usd,
  maxBudget: snake(Money.Usd, "max_budget"),
  windowEndsAt
}) {}

/**
 * A new budget window of a scope with a `budget_duration` began: its window spend
 * starts again at zero.
 *
 * @since 0.1.0
 */
export class BudgetWindowReset extends Schema.Class<BudgetWindowReset>("BudgetWindowReset")({
  _tag: Schema.tag("BudgetWindowReset").pipe(Schema.fromKey("type")),
  ...common,
  windowEndsAt: snake(Schema.DateTimeUtc, "window_ends_at"),
  maxBudget: snake(Schema.OptionFromNullOr(Money.Usd), "max_budget")
}) {}

/**
 * A key expires within the configured time (`keyExpiringWithin`).
 *
 * @since 0.1.0
 */
export class KeyExpiring extends Schema.Class<KeyExpiring>("KeyExpiring")({
  _tag: Schema.tag("KeyExpiring").pipe(Schema.fromKey("type")),
  ...common,
  keyAlias: snake(Schema.OptionFromNullOr(Schema.String), "key_alias"),
  expiresAt: snake(Schema.DateTimeUtc, "expires_at")
}) {}

/**
 * Any budget event, with its JSON form.
 *
 * @example
 * import { Schema } from "effect"
 * import { BudgetEvent } from "teambudget"
 *
 * const body = JSON.stringify(Schema.encodeSync(BudgetEvent.BudgetEvent)(event))
 * // {"type":"BudgetThresholdReached","event_id":"…","scope":{"kind":"team","id":"eng"},"percent":80,…}
 * @since 0.1.0
 */
export const BudgetEvent = Schema.Union(
  SoftBudgetCrossed,
  BudgetThresholdReached,
  BudgetWindowReset,
  KeyExpiring
)

/** @since 0.1.0 */
export type BudgetEvent = typeof BudgetEvent.Type

/**
 * The webhook body of an event.
 *
 * @since 0.1.0
 */
export const toJson = (event: BudgetEvent): string => JSON.stringify(Schema.encodeSync(BudgetEvent)(event))
