/**
 * Budget window arithmetic. A window's boundaries are computed from a fixed anchor
 * (the moment the duration was set), so ends never drift and a late check resets
 * exactly once, however many windows it skipped.
 *
 * @since 0.1.0
 */
import * as BudgetDuration from "./BudgetDuration.js"

/** @since 0.1.0 */
export interface Window {
  /** Epoch milliseconds, inclusive. */
  readonly start: number
  /** Epoch milliseconds, exclusive: the reset time. */
  readonly end: number
}

/**
 * Adds whole calendar months in UTC, clamping the day to the target month's length
 * (Jan 31 + 1mo is Feb 28 or 29) and keeping the time of day.
 *
 * @since 0.1.0
 */
export const addMonths = (epochMillis: number, months: number): number => {
  const date = new Date(epochMillis)
  const year = date.getUTCFullYear()
  const month = date.getUTCMonth() + months
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate()
  const day = Math.min(date.getUTCDate(), lastDay)
  return Date.UTC(
    year,
    month,
    day,
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    date.getUTCMilliseconds()
  )
}

/** The k-th boundary after `anchor` (k = 0 is the anchor itself). @since 0.1.0 */
export const boundary = (anchor: number, duration: BudgetDuration.BudgetDuration, k: number): number => {
  const fixed = BudgetDuration.fixedMillis(duration)
  return fixed === undefined ? addMonths(anchor, k * duration.count) : anchor + k * fixed
}

/**
 * The window that contains `now`. Times before the anchor belong to the first window.
 *
 * @example
 * const jan31 = Date.UTC(2025, 0, 31)
 * BudgetWindow.containing(jan31, { count: 1, unit: "mo" }, Date.UTC(2025, 1, 28)).start // Feb 28
 * @since 0.1.0
 */
export const containing = (anchor: number, duration: BudgetDuration.BudgetDuration, now: number): Window => {
  const fixed = BudgetDuration.fixedMillis(duration)
  let k: number
  if (fixed !== undefined) {
    k = Math.max(0, Math.floor((now - anchor) / fixed))
  } else {
    const a = new Date(anchor)
    const n = new Date(now)
    const months = (n.getUTCFullYear() - a.getUTCFullYear()) * 12 + (n.getUTCMonth() - a.getUTCMonth())
    k = Math.max(0, Math.floor(months / duration.count))
    while (k > 0 && boundary(anchor, duration, k) > now) k--
    while (boundary(anchor, duration, k + 1) <= now) k++
  }
  return { start: boundary(anchor, duration, k), end: boundary(anchor, duration, k + 1) }
}
