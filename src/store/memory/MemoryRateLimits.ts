/**
 * Rate-limit counters in process memory: one TAT per GCRA bucket and the leases of each
 * parallel bucket. Every acquire and complete is one synchronous block, so it is atomic
 * however many fibers call it; the counters are this process's alone (SPEC 8: instances
 * share limits through the SQL or Redis stores).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as RateArithmetic from "../RateArithmetic.js"
import type {
  RateAcquire,
  RateComplete,
  RateDecision,
  RateLimitStoreShape,
  RateRule
} from "../RateLimitStore.js"

/** The counters of one memory store. @since 0.1.0 */
export interface MemoryRateState {
  /** TAT per requests / tokens bucket; a bucket with no entry is full. */
  readonly tats: Map<string, number>
  /** Per parallel bucket: expiry (epoch ms) by ticket id. */
  readonly leases: Map<string, Map<string, number>>
}

/** Fresh, empty counters. @since 0.1.0 */
export const makeState = (): MemoryRateState => ({ tats: new Map(), leases: new Map() })

/** The leases of a bucket, with the expired ones dropped. */
const liveLeases = (state: MemoryRateState, bucket: string, now: number): Map<string, number> => {
  const leases = state.leases.get(bucket)
  if (leases === undefined) return new Map()
  for (const [ticketId, expiresAt] of leases) if (expiresAt <= now) leases.delete(ticketId)
  return leases
}

interface Verdict {
  readonly admitted: boolean
  readonly remaining: number
  readonly retryAfterMillis: number
  /** The bucket's TAT to store (GCRA rules only). */
  readonly tat: number
}

const judge = (state: MemoryRateState, rule: RateRule, request: RateAcquire): Verdict => {
  const { now } = request
  if (rule.kind === "parallel") {
    return { ...RateArithmetic.parallel(liveLeases(state, rule.bucket, now).size, rule.limit), tat: 0 }
  }
  const cost = rule.kind === "requests" ? 1 : request.tokens
  return RateArithmetic.gcra(state.tats.get(rule.bucket) ?? now, now, rule.limit, cost)
}

/** What a rule has left before the request, which a refusal reports for every rule. */
const leftNow = (state: MemoryRateState, rule: RateRule, now: number): number =>
  rule.kind === "parallel"
    ? RateArithmetic.freeSlots(liveLeases(state, rule.bucket, now).size, rule.limit)
    : RateArithmetic.remainingNow(state.tats.get(rule.bucket) ?? now, now, rule.limit)

/**
 * Decides every rule first and writes only when all of them admit: a refusal leaves
 * every counter as it was.
 *
 * @since 0.1.0
 */
export const acquire = (state: MemoryRateState, request: RateAcquire): RateDecision => {
  const verdicts: Array<Verdict> = []
  for (const rule of request.rules) {
    const verdict = judge(state, rule, request)
    if (!verdict.admitted) {
      return {
        _tag: "Refused",
        index: verdicts.length,
        retryAfterMillis: verdict.retryAfterMillis,
        remaining: request.rules.map((each) => leftNow(state, each, request.now))
      }
    }
    verdicts.push(verdict)
  }
  const expiresAt = request.now + request.leaseMillis
  const remaining: Array<number> = []
  request.rules.forEach((rule, index) => {
    const verdict = verdicts[index]
    if (verdict === undefined) return
    remaining.push(verdict.remaining)
    if (rule.kind !== "parallel") {
      state.tats.set(rule.bucket, verdict.tat)
      return
    }
    const leases = state.leases.get(rule.bucket)
    if (leases === undefined) state.leases.set(rule.bucket, new Map([[request.ticketId, expiresAt]]))
    else leases.set(request.ticketId, expiresAt)
  })
  return { _tag: "Admitted", remaining }
}

const unitsGivenBack = (rule: RateRule, request: RateComplete): number => {
  if (rule.kind === "tokens") return request.tokensDelta
  return request.refundRequest ? -1 : 0
}

/**
 * Corrects the tokens, gives the request back when asked, and frees the ticket's
 * leases. A bucket that ends up full is forgotten, which keeps the maps as small as the
 * set of busy buckets.
 *
 * @since 0.1.0
 */
export const complete = (state: MemoryRateState, request: RateComplete): void => {
  const { now } = request
  for (const rule of request.rules) {
    if (rule.kind === "parallel") {
      const leases = state.leases.get(rule.bucket)
      if (leases === undefined) continue
      leases.delete(request.ticketId)
      if (leases.size === 0) state.leases.delete(rule.bucket)
      continue
    }
    const units = unitsGivenBack(rule, request)
    if (units === 0) continue
    const next = RateArithmetic.correct(state.tats.get(rule.bucket) ?? now, now, rule.limit, units)
    if (next <= now) state.tats.delete(rule.bucket)
    else state.tats.set(rule.bucket, next)
  }
}

/**
 * The port over one set of memory counters.
 *
 * @example
 * import { Effect } from "effect"
 * import { MemoryRateLimits } from "teambudget"
 *
 * const store = MemoryRateLimits.make(MemoryRateLimits.makeState())
 * const decision = Effect.runSync(
 *   store.acquire({
 *     ticketId: "t-1",
 *     rules: [{ bucket: "key:k-1:requests", kind: "requests", limit: 60 }],
 *     tokens: 0,
 *     now: Date.now(),
 *     leaseMillis: 60_000
 *   })
 * )
 * @since 0.1.0
 */
export const make = (state: MemoryRateState): RateLimitStoreShape => ({
  acquire: (request) => Effect.sync(() => acquire(state, request)),
  complete: (request) => Effect.sync(() => complete(state, request))
})
