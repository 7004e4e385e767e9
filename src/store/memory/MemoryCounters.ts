/**
 * Spend counters of the memory store and their budget windows (SPEC 6). A window
 * resets lazily: the first step after its end finds a new window start and zeroes
 * the window spend, once, however many windows passed.
 *
 * @since 0.1.0
 */
import { DateTime, Option } from "effect"
import * as BudgetWindow from "../../domain/BudgetWindow.js"
import * as Limits from "../../domain/Limits.js"
import * as Money from "../../domain/Money.js"
import * as Spend from "../../domain/Spend.js"
import type { Counter, MemoryState } from "./MemoryState.js"

/** A counter with nothing spent, anchored at `now`. @since 0.1.0 */
export const empty = (now: number): Counter => ({
  total: Money.zero,
  windowSpend: Money.zero,
  windowStart: now,
  anchor: now,
  held: Money.zero
})

/** The counter of a scope, made (empty, anchored now) when it has none yet. @since 0.1.0 */
export const counterOf = (state: MemoryState, key: string, now: number): Counter => {
  let counter = state.counters.get(key)
  if (counter === undefined) {
    counter = empty(now)
    state.counters.set(key, counter)
  }
  return counter
}

/**
 * Brings the counter's window up to `now` (the lazy reset) and returns that window,
 * or `undefined` when the limits have no duration.
 *
 * @since 0.1.0
 */
export const roll = (
  counter: Counter,
  limits: Limits.Limits | undefined,
  now: number
): BudgetWindow.Window | undefined => {
  if (limits === undefined || Option.isNone(limits.budgetDuration)) return undefined
  const window = BudgetWindow.containing(counter.anchor, limits.budgetDuration.value, now)
  if (window.start !== counter.windowStart) {
    counter.windowSpend = Money.zero
    counter.windowStart = window.start
  }
  return window
}

/** The figure a cap binds: the window spend with a duration, else the lifetime total. @since 0.1.0 */
export const current = (counter: Counter, window: BudgetWindow.Window | undefined): Money.Money =>
  window === undefined ? counter.total : counter.windowSpend

/** @since 0.1.0 */
export const resetAt = (window: BudgetWindow.Window | undefined): Option.Option<DateTime.Utc> =>
  window === undefined ? Option.none() : Option.some(DateTime.unsafeMake(window.end))

/** The spend of a scope as of `now`. @since 0.1.0 */
export const snapshot = (
  state: MemoryState,
  key: string,
  limits: Limits.Limits | undefined,
  now: number
): Spend.SpendSnapshot => {
  const counter = state.counters.get(key)
  if (counter === undefined) return Spend.empty
  const window = roll(counter, limits, now)
  return new Spend.SpendSnapshot(
    { total: counter.total, current: current(counter, window), held: counter.held, resetAt: resetAt(window) },
    true
  )
}

/** A new window starts now with nothing spent in it; the lifetime total stays. @since 0.1.0 */
export const restartWindow = (state: MemoryState, key: string, now: number): void => {
  const counter = counterOf(state, key, now)
  counter.anchor = now
  counter.windowStart = now
  counter.windowSpend = Money.zero
}

/**
 * Starts counting for a new row. Spend recorded before the row existed (an end user
 * charged before it got a row) is kept; a duration starts its first window now.
 *
 * @since 0.1.0
 */
export const openScope = (state: MemoryState, key: string, limits: Limits.Limits, now: number): void => {
  if (Option.isSome(limits.budgetDuration)) restartWindow(state, key, now)
  else counterOf(state, key, now)
}

/**
 * Applies a limits patch of a scope. A new window length starts a new window now;
 * a new cap alone keeps what was spent.
 *
 * @since 0.1.0
 */
export const patchLimits = (
  state: MemoryState,
  key: string,
  limits: Limits.Limits,
  change: Limits.LimitsPatch | undefined,
  now: number
): Limits.Limits => {
  if (change === undefined) return limits
  if (Limits.changesDuration(limits, change)) restartWindow(state, key, now)
  return Limits.patch(limits, change)
}
