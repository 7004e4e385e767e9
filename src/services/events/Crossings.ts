/**
 * Which budget events a scope's spend shows: pure arithmetic over one reading of its
 * limits and spend, so every instance that reads the same state derives the same
 * events with the same ids.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { DateTime, Option } from "effect"
import {
  type BudgetEvent,
  BudgetThresholdReached,
  BudgetWindowReset,
  type EventScope,
  KeyExpiring,
  PERCENTS,
  SoftBudgetCrossed
} from "../../domain/BudgetEvent.js"
import type { Limits } from "../../domain/Limits.js"
import type { SpendSnapshot } from "../../domain/Spend.js"
import type { VirtualKey } from "../../domain/VirtualKey.js"

/** One reading of a scope. @since 0.1.0 */
export interface Reading {
  readonly scope: EventScope
  /** A stable name for event ids; never a key's hash. */
  readonly idKey: string
  readonly limits: Limits
  readonly spend: SpendSnapshot
}

/** An event and when its crossing can no longer be seen again (its claim may go then). @since 0.1.0 */
export interface Candidate {
  readonly event: BudgetEvent
  readonly expiresAt: number | undefined
}

/**
 * A deterministic event id: the first 128 bits of a SHA-256 of its parts.
 *
 * @since 0.1.0
 */
export const eventId = (parts: ReadonlyArray<string | number | bigint>): string =>
  createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 32)

/** The end of the scope's current window, when it has a duration. @since 0.1.0 */
export const windowEnd = (spend: SpendSnapshot): number | undefined =>
  Option.isSome(spend.resetAt) ? spend.resetAt.value.epochMillis : undefined

/** Whether a scope can raise any budget event at all. @since 0.1.0 */
export const watched = (limits: Limits): boolean =>
  Option.isSome(limits.maxBudget) || Option.isSome(limits.softBudget) || Option.isSome(limits.budgetDuration)

/**
 * The least spend above the current one at which a reading's scope raises its next
 * event in this window (its soft budget or the next percentage of its max budget), or
 * undefined when every one of them is reached already.
 *
 * @since 0.1.0
 */
export const nextThreshold = (reading: Reading): bigint | undefined => {
  const { limits, spend } = reading
  let next: bigint | undefined
  const consider = (amount: bigint) => {
    // Nothing fires at zero spend.
    const at = amount < 1n ? 1n : amount
    if (at > spend.current && (next === undefined || at < next)) next = at
  }
  if (Option.isSome(limits.softBudget)) consider(limits.softBudget.value)
  if (Option.isSome(limits.maxBudget)) {
    // spend * 100 >= max * percent, in integers: spend >= ceil(max * percent / 100).
    for (const percent of PERCENTS) consider((limits.maxBudget.value * BigInt(percent) + 99n) / 100n)
  }
  return next
}

const sameMoney = Option.getEquivalence((a: bigint, b: bigint) => a === b)
const sameDuration = Option.getEquivalence(
  (
    a: { readonly count: number; readonly unit: string },
    b: { readonly count: number; readonly unit: string }
  ) => a.count === b.count && a.unit === b.unit
)

/** Whether two sets of limits have the same caps and window, the limits events depend on. @since 0.1.0 */
export const sameCaps = (a: Limits, b: Limits): boolean =>
  sameMoney(a.maxBudget, b.maxBudget) &&
  sameMoney(a.softBudget, b.softBudget) &&
  sameDuration(a.budgetDuration, b.budgetDuration)

/**
 * The events a reading shows, in order: a window reset (when `previousEnd`, the end
 * of the window this instance saw before, is earlier than the current one), then the
 * soft budget, then 50 / 80 / 100 % of the max budget. An id names the scope, the
 * window and the cap it was computed against, so a crossing fires once per window,
 * again in the next one, and again when the cap changes. Nothing fires at zero spend.
 *
 * @since 0.1.0
 */
export const crossings = (
  reading: Reading,
  previousEnd: number | undefined,
  now: number
): Array<Candidate> => {
  const { scope, idKey, limits, spend } = reading
  const occurredAt = DateTime.unsafeMake(now)
  const end = windowEnd(spend)
  const window = end ?? "lifetime"
  const windowEndsAt = Option.map(spend.resetAt, (at) => at)
  const out: Array<Candidate> = []
  if (previousEnd !== undefined && end !== undefined && end > previousEnd) {
    out.push({
      event: new BudgetWindowReset({
        eventId: eventId(["window_reset", idKey, end]),
        scope,
        occurredAt,
        windowEndsAt: DateTime.unsafeMake(end),
        maxBudget: limits.maxBudget
      }),
      expiresAt: end
    })
  }
  const current = spend.current
  if (current === 0n) return out
  if (Option.isSome(limits.softBudget) && current >= limits.softBudget.value) {
    const softBudget = limits.softBudget.value
    out.push({
      event: new SoftBudgetCrossed({
        eventId: eventId(["soft_budget", idKey, window, softBudget]),
        scope,
        occurredAt,
        spend: current,
        softBudget,
        windowEndsAt
      }),
      expiresAt: end
    })
  }
  if (Option.isSome(limits.maxBudget)) {
    const maxBudget = limits.maxBudget.value
    for (const percent of PERCENTS) {
      if (current * 100n < maxBudget * BigInt(percent)) break
      out.push({
        event: new BudgetThresholdReached({
          eventId: eventId(["threshold", idKey, window, percent, maxBudget]),
          scope,
          occurredAt,
          percent,
          spend: current,
          maxBudget,
          windowEndsAt
        }),
        expiresAt: end
      })
    }
  }
  return out
}

/**
 * The event of a key that expires soon. Its id names the key and its expiry, so a
 * key warns once, and again only when its expiry is moved.
 *
 * @since 0.1.0
 */
export const keyExpiring = (key: VirtualKey, expiresAt: DateTime.Utc, now: number): Candidate => ({
  event: new KeyExpiring({
    eventId: eventId(["key_expiring", key.keyId, expiresAt.epochMillis]),
    scope: { kind: "key", id: key.keyId },
    occurredAt: DateTime.unsafeMake(now),
    keyAlias: key.keyAlias,
    expiresAt
  }),
  expiresAt: expiresAt.epochMillis
})
