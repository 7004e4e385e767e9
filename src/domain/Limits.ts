/**
 * The limits one scope may carry. Every limit is optional: a scope binds a request
 * only through the limits it has.
 *
 * @since 0.1.0
 */
import { Option, Schema } from "effect"
import * as BudgetDuration from "./BudgetDuration.js"
import * as Money from "./Money.js"

const Count = Schema.Int.pipe(Schema.nonNegative())

/** @since 0.1.0 */
export class Limits extends Schema.Class<Limits>("Limits")({
  maxBudget: Schema.OptionFromSelf(Money.Nanos),
  softBudget: Schema.OptionFromSelf(Money.Nanos),
  budgetDuration: Schema.OptionFromSelf(BudgetDuration.Parsed),
  tpmLimit: Schema.OptionFromSelf(Count),
  rpmLimit: Schema.OptionFromSelf(Count),
  maxParallelRequests: Schema.OptionFromSelf(Count)
}) {}

/** No limit at all. @since 0.1.0 */
export const none: Limits = new Limits({
  maxBudget: Option.none(),
  softBudget: Option.none(),
  budgetDuration: Option.none(),
  tpmLimit: Option.none(),
  rpmLimit: Option.none(),
  maxParallelRequests: Option.none()
})

/**
 * Whether no limit at all is set. A member's own budget that ends up like this is
 * unlinked: the membership then reads `budget: Option.none()`.
 *
 * @since 0.1.0
 */
export const isEmpty = (limits: Limits): boolean =>
  Option.isNone(limits.maxBudget) &&
  Option.isNone(limits.softBudget) &&
  Option.isNone(limits.budgetDuration) &&
  Option.isNone(limits.tpmLimit) &&
  Option.isNone(limits.rpmLimit) &&
  Option.isNone(limits.maxParallelRequests)

/**
 * A change to limits: a field that is absent stays as it is, `Option.none()` clears
 * it, `Option.some(x)` sets it (SPEC 4).
 *
 * @since 0.1.0
 */
export interface LimitsPatch {
  readonly maxBudget?: Option.Option<Money.Money>
  readonly softBudget?: Option.Option<Money.Money>
  readonly budgetDuration?: Option.Option<BudgetDuration.BudgetDuration>
  readonly tpmLimit?: Option.Option<number>
  readonly rpmLimit?: Option.Option<number>
  readonly maxParallelRequests?: Option.Option<number>
}

/** Applies a patch. @since 0.1.0 */
export const patch = (limits: Limits, change: LimitsPatch): Limits =>
  new Limits({
    maxBudget: change.maxBudget ?? limits.maxBudget,
    softBudget: change.softBudget ?? limits.softBudget,
    budgetDuration: change.budgetDuration ?? limits.budgetDuration,
    tpmLimit: change.tpmLimit ?? limits.tpmLimit,
    rpmLimit: change.rpmLimit ?? limits.rpmLimit,
    maxParallelRequests: change.maxParallelRequests ?? limits.maxParallelRequests
  })

/**
 * Whether a patch changes the window length, which starts a new window at once
 * with nothing spent in it.
 *
 * @since 0.1.0
 */
export const changesDuration = (limits: Limits, change: LimitsPatch): boolean =>
  change.budgetDuration !== undefined &&
  !Option.getEquivalence(
    (a: BudgetDuration.BudgetDuration, b: BudgetDuration.BudgetDuration) =>
      a.count === b.count && a.unit === b.unit
  )(limits.budgetDuration, change.budgetDuration)
