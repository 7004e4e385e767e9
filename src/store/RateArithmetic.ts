/**
 * The arithmetic of the rate-limit counters, shared by every `RateLimitStore`: the
 * memory store calls it, the SQL stores call it inside their transaction, and the Redis
 * store's Lua script repeats it line for line (IEEE doubles in every one of them give the
 * same results, since only `+ - * /`, `floor` and `max` are used).
 *
 * Requests and tokens use GCRA. A bucket of `limit` units a minute keeps its theoretical
 * arrival time (TAT) in epoch milliseconds; each unit moves it `interval` ms ahead, and a
 * request is admitted while TAT stays at most one window (`limit` intervals) ahead of now.
 * So a full minute's allowance can be spent at once, and it then returns continuously.
 *
 * Exactness. A double near today's epoch (about 2^40.6 ms) resolves 2^-12 ms, so adding
 * `60000 / limit` to it rounds, and the rounding of thousands of additions adds up to
 * whole milliseconds: a bucket of 17 a minute would admit 16. No fixed epsilon cures that
 * (it would have to exceed a millisecond, and then admit early). Instead the interval is
 * rounded once to a grid of 2^-11 ms ({@link TICK_MILLIS}, about half a microsecond):
 * every TAT is then a whole number of ticks below 2^42 ms (the year 2109), which a double
 * holds exactly, so every sum and comparison here is exact, and a window holds exactly
 * `limit` units for every limit. The window is `limit` rounded intervals, within `limit`
 * quarter-microseconds of a minute; the refill rate is the limit to within
 * `limit / 245,760,000` (0.004% at 10,000 a minute, 0.4% at a million).
 *
 * @since 0.1.0
 */

/** The window every limit is counted over. @since 0.1.0 */
export const WINDOW_MILLIS = 60_000

/** The grid of every TAT: 2^-11 ms. @since 0.1.0 */
export const TICK_MILLIS = 2 ** -11

/** Ticks in one window (60000 × 2048). @since 0.1.0 */
export const TICKS_PER_WINDOW = 122_880_000

/**
 * How long to wait after a refusal by a `parallel` rule: a slot frees as soon as any
 * request in flight ends, which nothing predicts, so the caller is told to come back soon.
 *
 * @since 0.1.0
 */
export const PARALLEL_RETRY_MILLIS = 1_000

/**
 * The milliseconds one unit takes to return: `60000 / limit` rounded to the nearest tick,
 * and at least one tick. Computed as `floor(122880000 / limit + 0.5) × 2^-11`.
 *
 * @example
 * intervalMillis(3) // 20000
 * intervalMillis(7) // 8571.4287109375
 * @since 0.1.0
 */
export const intervalMillis = (limit: number): number =>
  Math.max(1, Math.floor(TICKS_PER_WINDOW / limit + 0.5)) * TICK_MILLIS

/** How far ahead of now the TAT may run: `limit` intervals. @since 0.1.0 */
export const burstMillis = (limit: number): number => limit * intervalMillis(limit)

/** What a GCRA bucket decided. @since 0.1.0 */
export interface GcraOutcome {
  readonly admitted: boolean
  /** The TAT to store when admitted; the old one (unchanged) when refused. */
  readonly tat: number
  /** Units left after this decision. */
  readonly remaining: number
  /** 0 when admitted; else the milliseconds until the same cost would pass. */
  readonly retryAfterMillis: number
}

const unitsLeft = (burst: number, ahead: number, interval: number): number =>
  Math.max(0, Math.floor((burst - ahead) / interval))

/**
 * One GCRA decision: may `cost` units pass a bucket of `limit` a minute whose TAT is
 * `tat` (use `now`, or anything earlier, for a bucket never seen)? A cost above the limit
 * can never pass: it is refused with a full window to wait.
 *
 * @example
 * const first = gcra(0, 1_000, 3, 1) // admitted, remaining 2, tat 21000
 * @since 0.1.0
 */
export const gcra = (tat: number, now: number, limit: number, cost: number): GcraOutcome => {
  const interval = intervalMillis(limit)
  const burst = limit * interval
  const base = Math.max(tat, now)
  if (cost > limit) {
    return {
      admitted: false,
      tat,
      remaining: unitsLeft(burst, base - now, interval),
      retryAfterMillis: WINDOW_MILLIS
    }
  }
  const next = base + cost * interval
  const ahead = next - now
  return ahead <= burst
    ? { admitted: true, tat: next, remaining: unitsLeft(burst, ahead, interval), retryAfterMillis: 0 }
    : {
        admitted: false,
        tat,
        remaining: unitsLeft(burst, base - now, interval),
        retryAfterMillis: ahead - burst
      }
}

/**
 * Units a GCRA bucket has left now, taking none: what a refusal reports for every rule
 * of the request it refused.
 *
 * @example
 * remainingNow(41_000, 1_000, 3) // 1: TAT 40 s ahead leaves one 20 s interval of the minute
 * @since 0.1.0
 */
export const remainingNow = (tat: number, now: number, limit: number): number => {
  const interval = intervalMillis(limit)
  return unitsLeft(limit * interval, Math.max(tat, now) - now, interval)
}

/**
 * A TAT after `units` more (positive: tokens used beyond the estimate) or fewer
 * (negative: tokens or a request given back). Units used are charged from now if the
 * bucket has refilled since; units given back never take TAT below now, since a bucket
 * cannot hold more than a full window.
 *
 * @example
 * correct(50_000, 10_000, 3, -1) // 30000: one request given back
 * @since 0.1.0
 */
export const correct = (tat: number, now: number, limit: number, units: number): number =>
  Math.max(Math.max(tat, now) + units * intervalMillis(limit), now)

/** What a parallel rule decided. @since 0.1.0 */
export interface ParallelOutcome {
  readonly admitted: boolean
  /** Free slots after this decision. */
  readonly remaining: number
  /** 0 when admitted, else {@link PARALLEL_RETRY_MILLIS}. */
  readonly retryAfterMillis: number
}

/**
 * Slots a parallel bucket has free beside `live` unexpired leases, taking none (a limit
 * lowered below the leases in flight has none).
 *
 * @example
 * freeSlots(1, 3) // 2
 * @since 0.1.0
 */
export const freeSlots = (live: number, limit: number): number => Math.max(0, limit - live)

/**
 * Whether one more request fits beside `live` unexpired leases (those with
 * `expiresAt > now`).
 *
 * @example
 * parallel(2, 3) // admitted, remaining 0
 * @since 0.1.0
 */
export const parallel = (live: number, limit: number): ParallelOutcome =>
  live < limit
    ? { admitted: true, remaining: limit - live - 1, retryAfterMillis: 0 }
    : { admitted: false, remaining: 0, retryAfterMillis: PARALLEL_RETRY_MILLIS }
