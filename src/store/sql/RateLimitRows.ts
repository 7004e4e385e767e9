/**
 * What the SQL rate-limit steps share, whichever way they reach the database (through
 * the client, or synchronously on the embedded connection): reading bucket and lease
 * rows, and telling which TATs a decision changed.
 *
 * @since 0.1.0
 */
import type * as MemoryRateLimits from "../memory/MemoryRateLimits.js"
import type { RateRule } from "../RateLimitStore.js"

/** A number the driver returned as a number, a bigint or text. @since 0.1.0 */
export const asNumber = (value: unknown): number =>
  typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : Number(String(value))

/** The buckets of `rules` that keep a TAT. @since 0.1.0 */
export const gcraBuckets = (rules: ReadonlyArray<RateRule>): ReadonlyArray<string> => [
  ...new Set(rules.filter((rule) => rule.kind !== "parallel").map((rule) => rule.bucket))
]

/** The buckets of `rules` that hold leases. @since 0.1.0 */
export const parallelBuckets = (rules: ReadonlyArray<RateRule>): ReadonlyArray<string> => [
  ...new Set(rules.filter((rule) => rule.kind === "parallel").map((rule) => rule.bucket))
]

/**
 * The TATs a decision on `state` changed (a bucket the memory counters forget is full:
 * its TAT is now).
 *
 * @since 0.1.0
 */
export const changedTats = (
  rules: ReadonlyArray<RateRule>,
  stored: ReadonlyMap<string, number>,
  state: MemoryRateLimits.MemoryRateState,
  now: number
): ReadonlyMap<string, number> =>
  new Map(
    gcraBuckets(rules).flatMap((bucket) => {
      const tat = state.tats.get(bucket) ?? now
      return tat === stored.get(bucket) ? [] : [[bucket, tat] as const]
    })
  )

/** Lease rows (`bucket`, `ticket_id`, `expires_at`) by bucket and ticket. @since 0.1.0 */
export const leasesOf = (
  rows: ReadonlyArray<Readonly<Record<string, unknown>>>
): Map<string, Map<string, number>> => {
  const leases = new Map<string, Map<string, number>>()
  for (const row of rows) {
    const bucket = String(row["bucket"])
    const held = leases.get(bucket) ?? new Map<string, number>()
    held.set(String(row["ticket_id"]), asNumber(row["expires_at"]))
    leases.set(bucket, held)
  }
  return leases
}
