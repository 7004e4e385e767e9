/**
 * Spend counters of the SQL stores: one `tb_counters` row per scope, keyed by
 * `Scope.key`. A row carries the lifetime total, the spend of the current window, what
 * is held, the window's anchor, start and end, and a copy of the scope's cap and
 * window length. Entity writes keep that copy in step in their own transaction, so a
 * ledger step touches this table alone.
 *
 * Windows follow SPEC 6 exactly as the memory store does: boundaries come from the
 * anchor (when the length was last set), a step after the end resets the window spend
 * once, and a new length starts a new window with nothing spent.
 *
 * @since 0.1.0
 */
import { DateTime, Either, Option } from "effect"
import * as BudgetDuration from "../../domain/BudgetDuration.js"
import * as BudgetWindow from "../../domain/BudgetWindow.js"
import { BudgetExceeded, CorruptRecord, type EntityKind } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import * as Scope from "../../domain/Scope.js"
import * as Spend from "../../domain/Spend.js"
import type { Headroom, HoldRequest } from "../SpendLedger.js"
import { IntColumn, MoneyColumn, nullable } from "./Columns.js"
import { RowReader } from "./RowReader.js"
import { column } from "./SqlErrors.js"

/** A counter row, decoded. @since 0.1.0 */
export interface Counter {
  readonly key: string
  readonly total: Money.Money
  readonly windowSpend: Money.Money
  readonly held: Money.Money
  readonly anchor: number
  readonly windowStart: number
  readonly windowEnd: Option.Option<number>
  readonly maxBudget: Option.Option<Money.Money>
  readonly duration: Option.Option<BudgetDuration.BudgetDuration>
}

/** The entity a scope key belongs to, for naming a counter that cannot be decoded. */
const entityOf = (key: string): EntityKind => {
  const kind = key.slice(0, key.indexOf(":"))
  switch (kind) {
    case "key":
    case "user":
    case "membership":
    case "team":
    case "organization":
    case "end_user":
      return kind
    default:
      return "budget"
  }
}

/**
 * How a counter is named in an error: by the scope's display id when the caller knows
 * the scope, never by a key hash.
 */
const nameOf = (key: string, refs: ReadonlyMap<string, Scope.ScopeRef>): string => {
  const ref = refs.get(key)
  if (ref !== undefined) return Scope.displayId(ref)
  return key.startsWith("key:") ? "(a key)" : key.slice(key.indexOf(":") + 1)
}

/**
 * Decodes one counter row, or says what is wrong with it. Hand-written rather than a
 * schema because every ledger step decodes several; the checks are the same
 * (non-negative money, valid times and window length).
 */
const decodeCounter = (row: Record<string, unknown>): Either.Either<Counter, string> => {
  const read = new RowReader(row)
  const counter: Counter = {
    key: read.string("scope_key"),
    total: read.money("total"),
    windowSpend: read.money("window_spend"),
    held: read.money("held"),
    anchor: read.millis("anchor"),
    windowStart: read.millis("window_start"),
    windowEnd: read.optionalMillis("window_end"),
    maxBudget: read.optionalMoney("max_budget"),
    duration: read.duration("budget_duration")
  }
  return read.problem === undefined ? Either.right(counter) : Either.left(read.problem)
}

/** Decodes counter rows; the first row that cannot be decoded fails with `CorruptRecord`. @since 0.1.0 */
export const decodeCounters = (
  rows: ReadonlyArray<Record<string, unknown>>,
  refs: ReadonlyMap<string, Scope.ScopeRef> = new Map()
): Either.Either<ReadonlyArray<Counter>, CorruptRecord> => {
  const counters: Array<Counter> = []
  for (const row of rows) {
    const decoded = decodeCounter(row)
    if (Either.isLeft(decoded)) {
      const key = column("scope_key")(row)
      return Either.left(
        new CorruptRecord({ entity: entityOf(key), id: nameOf(key, refs), detail: decoded.left })
      )
    }
    counters.push(decoded.right)
  }
  return Either.right(counters)
}

/** A counter brought up to `now`, with the window it is in (none without a duration). @since 0.1.0 */
export interface Rolled {
  readonly counter: Counter
  readonly window: BudgetWindow.Window | undefined
  /** The stored row is out of date and must be written. */
  readonly changed: boolean
}

/**
 * The lazy reset (SPEC 6): when `now` is past the stored window, the window spend
 * starts again at zero in the window that contains `now`, once.
 *
 * @since 0.1.0
 */
export const roll = (counter: Counter, now: number): Rolled => {
  if (Option.isNone(counter.duration)) return { counter, window: undefined, changed: false }
  const window = BudgetWindow.containing(counter.anchor, counter.duration.value, now)
  const reset = window.start !== counter.windowStart
  const endStale = !Option.contains(counter.windowEnd, window.end)
  if (!reset && !endStale) return { counter, window, changed: false }
  return {
    counter: {
      ...counter,
      windowSpend: reset ? Money.zero : counter.windowSpend,
      windowStart: window.start,
      windowEnd: Option.some(window.end)
    },
    window,
    changed: true
  }
}

/** The figure a cap binds: the window spend with a duration, else the lifetime total. @since 0.1.0 */
export const current = (counter: Counter, window: BudgetWindow.Window | undefined): Money.Money =>
  window === undefined ? counter.total : counter.windowSpend

/** @since 0.1.0 */
export const resetAt = (window: BudgetWindow.Window | undefined): Option.Option<DateTime.Utc> =>
  window === undefined ? Option.none() : Option.some(DateTime.unsafeMake(window.end))

/**
 * What a step reports of one counter: the figure its cap binds, what it holds, its
 * cap and when its window resets.
 *
 * @since 0.1.0
 */
export interface View {
  readonly key: string
  readonly spend: Money.Money
  readonly held: Money.Money
  readonly maxBudget: Option.Option<Money.Money>
  readonly resetAt: Option.Option<DateTime.Utc>
}

/** @since 0.1.0 */
export const view = (counter: Counter, window: BudgetWindow.Window | undefined): View => ({
  key: counter.key,
  spend: current(counter, window),
  held: counter.held,
  maxBudget: counter.maxBudget,
  resetAt: resetAt(window)
})

/**
 * The binding scope with the least left once `extraHeld` is held too, ties going to
 * the first in scope order (as the memory store reports it).
 *
 * @since 0.1.0
 */
export const tightest = (
  scopes: ReadonlyArray<Scope.ScopeRef>,
  views: ReadonlyMap<string, View>,
  extraHeld: Money.Money
): Option.Option<Headroom> => {
  let best: Headroom | undefined
  for (const scope of scopes) {
    const counter = views.get(Scope.key(scope))
    if (counter === undefined || Option.isNone(counter.maxBudget)) continue
    const maxBudget = counter.maxBudget.value
    const remaining = Money.minus(maxBudget, Money.make(counter.spend + counter.held + extraHeld))
    if (best === undefined || remaining < best.remaining) {
      best = { scope, remaining, maxBudget, resetAt: counter.resetAt }
    }
  }
  return Option.fromNullable(best)
}

/**
 * Whether `request` may be held against counters seen as `views` (SPEC 5): a strict
 * hold must fit under every cap with what is already held, a lenient one only needs
 * spend below each cap. The refusal names the first binding scope in request order.
 *
 * @since 0.1.0
 */
export const refusal = (
  request: HoldRequest,
  views: ReadonlyMap<string, View>
): BudgetExceeded | undefined => {
  const strict = request.mode === "strict"
  for (const scope of request.scopes) {
    const counter = views.get(Scope.key(scope))
    if (counter === undefined || Option.isNone(counter.maxBudget)) continue
    const maxBudget = counter.maxBudget.value
    const refused = strict
      ? counter.spend + counter.held + request.amount > maxBudget
      : counter.spend >= maxBudget
    if (refused) {
      return new BudgetExceeded({
        scope: scope.kind,
        id: Scope.displayId(scope),
        spend: counter.spend,
        held: counter.held,
        maxBudget,
        requested: request.amount,
        resetAt: counter.resetAt
      })
    }
  }
  return undefined
}

/** The counter columns an entity query joins in (all NULL when the scope has no counter). @since 0.1.0 */
export const spendFields = {
  c_total: nullable(MoneyColumn),
  c_window_spend: nullable(MoneyColumn),
  c_held: nullable(MoneyColumn),
  c_anchor: nullable(IntColumn),
  c_window_start: nullable(IntColumn)
}

/** @since 0.1.0 */
export interface SpendColumns {
  readonly c_total: Option.Option<Money.Money>
  readonly c_window_spend: Option.Option<Money.Money>
  readonly c_held: Option.Option<Money.Money>
  readonly c_anchor: Option.Option<number>
  readonly c_window_start: Option.Option<number>
}

/** The select list for {@link spendFields}, from a counter joined as `c`. @since 0.1.0 */
export const SPEND_COLUMNS =
  "c.total AS c_total, c.window_spend AS c_window_spend, c.held AS c_held, " +
  "c.anchor AS c_anchor, c.window_start AS c_window_start"

/**
 * The spend of a scope as of `now`, from its joined counter and the limits of its
 * entity (which are what the counter's copy was written from).
 *
 * @since 0.1.0
 */
export const snapshot = (
  columns: SpendColumns,
  duration: Option.Option<BudgetDuration.BudgetDuration>,
  now: number
): Spend.SpendSnapshot => {
  const { c_anchor, c_held, c_total, c_window_spend, c_window_start } = columns
  if (
    Option.isNone(c_total) ||
    Option.isNone(c_window_spend) ||
    Option.isNone(c_held) ||
    Option.isNone(c_anchor) ||
    Option.isNone(c_window_start)
  ) {
    return Spend.empty
  }
  const counter: Counter = {
    key: "",
    total: c_total.value,
    windowSpend: c_window_spend.value,
    held: c_held.value,
    anchor: c_anchor.value,
    windowStart: c_window_start.value,
    windowEnd: Option.none(),
    maxBudget: Option.none(),
    duration
  }
  const { counter: rolled, window } = roll(counter, now)
  return new Spend.SpendSnapshot(
    { total: rolled.total, current: current(rolled, window), held: rolled.held, resetAt: resetAt(window) },
    true
  )
}
