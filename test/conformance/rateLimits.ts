/**
 * The rate-limit store conformance suite: the same cases for every `RateLimitStore`,
 * with explicit `now` values, so each store must give exactly the decisions of
 * `RateArithmetic.ts` (the memory store is the reference of the random sequence test).
 * Bucket names are fresh per test, so a store may be shared by the tests.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, type Layer } from "effect"
import type { RateAcquire, RateComplete, RateDecision, RateRule } from "../../src/store/RateLimitStore.js"
import { RateLimitStore } from "../../src/store/RateLimitStore.js"
import * as MemoryRateLimits from "../../src/store/memory/MemoryRateLimits.js"
import * as RateArithmetic from "../../src/store/RateArithmetic.js"

/** A realistic epoch, where doubles resolve only 2^-12 ms. */
export const NOW = 1_764_000_000_000

type Run = <A, E>(effect: Effect.Effect<A, E, RateLimitStore>) => Effect.Effect<A, unknown>

const fresh = (name: string) => `${name}:${crypto.randomUUID().slice(0, 8)}`

export const requests = (bucket: string, limit: number): RateRule => ({ bucket, kind: "requests", limit })
export const tokens = (bucket: string, limit: number): RateRule => ({ bucket, kind: "tokens", limit })
export const parallel = (bucket: string, limit: number): RateRule => ({ bucket, kind: "parallel", limit })

let tickets = 0
const acquire = (
  rules: ReadonlyArray<RateRule>,
  now: number,
  options: { readonly tokens?: number; readonly ticketId?: string; readonly leaseMillis?: number } = {}
) =>
  Effect.flatMap(RateLimitStore, (store) =>
    store.acquire({
      ticketId: options.ticketId ?? `t-${++tickets}`,
      rules,
      tokens: options.tokens ?? 0,
      now,
      leaseMillis: options.leaseMillis ?? 60_000
    })
  )

const complete = (
  rules: ReadonlyArray<RateRule>,
  ticketId: string,
  now: number,
  options: { readonly tokensDelta?: number; readonly refundRequest?: boolean } = {}
) =>
  Effect.flatMap(RateLimitStore, (store) =>
    store.complete({
      ticketId,
      rules,
      tokensDelta: options.tokensDelta ?? 0,
      refundRequest: options.refundRequest ?? false,
      now
    })
  )

const admitted = (...remaining: Array<number>): RateDecision => ({ _tag: "Admitted", remaining })
const refused = (index: number, retryAfterMillis: number, ...remaining: Array<number>): RateDecision => ({
  _tag: "Refused",
  index,
  retryAfterMillis,
  remaining
})

const gcraTests = (run: Run) => {
  it.effect("admits a minute's requests at once, then one per interval", () =>
    run(
      Effect.gen(function* () {
        const rule = [requests(fresh("key:requests"), 3)]
        expect(yield* acquire(rule, NOW)).toEqual(admitted(2))
        expect(yield* acquire(rule, NOW)).toEqual(admitted(1))
        expect(yield* acquire(rule, NOW)).toEqual(admitted(0))
        expect(yield* acquire(rule, NOW)).toEqual(refused(0, 20_000, 0))
        expect(yield* acquire(rule, NOW + 19_999)).toEqual(refused(0, 1, 0))
        expect(yield* acquire(rule, NOW + 20_000)).toEqual(admitted(0))
        // A minute idle refills the bucket completely, and no further.
        expect(yield* acquire(rule, NOW + 200_000)).toEqual(admitted(2))
      })
    )
  )

  it.effect("is exact for limits that do not divide a minute", () =>
    run(
      Effect.gen(function* () {
        for (const limit of [7, 17, 33, 999]) {
          const rule = [requests(fresh(`key:${limit}`), limit)]
          for (let i = 1; i <= limit; i++) {
            expect(yield* acquire(rule, NOW)).toEqual(admitted(limit - i))
          }
          const interval = RateArithmetic.intervalMillis(limit)
          expect(yield* acquire(rule, NOW)).toEqual(refused(0, interval, 0))
          // One interval later exactly one more passes.
          expect(yield* acquire(rule, NOW + Math.ceil(interval))).toEqual(admitted(0))
          expect((yield* acquire(rule, NOW + Math.ceil(interval)))._tag).toBe("Refused")
        }
      })
    )
  )

  it.effect("charges tokens by the estimate and refuses a request that would overrun", () =>
    run(
      Effect.gen(function* () {
        const rule = [tokens(fresh("key:tokens"), 1_000)]
        expect(yield* acquire(rule, NOW, { tokens: 600 })).toEqual(admitted(400))
        // 100 tokens short: they return at 60 ms each.
        expect(yield* acquire(rule, NOW, { tokens: 500 })).toEqual(refused(0, 6_000, 400))
        expect(yield* acquire(rule, NOW, { tokens: 400 })).toEqual(admitted(0))
        expect(yield* acquire(rule, NOW + 6_000, { tokens: 100 })).toEqual(admitted(0))
      })
    )
  )

  it.effect("refuses a cost above the limit with a full window to wait, counting nothing", () =>
    run(
      Effect.gen(function* () {
        const rule = [tokens(fresh("key:tokens"), 1_000)]
        expect(yield* acquire(rule, NOW, { tokens: 1_001 })).toEqual(refused(0, 60_000, 1_000))
        expect(yield* acquire(rule, NOW, { tokens: 1_000 })).toEqual(admitted(0))
      })
    )
  )
}

const allOrNothingTests = (run: Run) => {
  it.effect("counts on every rule or on none, naming the first rule that refuses", () =>
    run(
      Effect.gen(function* () {
        const key = requests(fresh("key:requests"), 10)
        const keyTokens = tokens(fresh("key:tokens"), 1_000)
        const slots = parallel(fresh("key:parallel"), 5)
        const team = requests(fresh("team:requests"), 1)
        const rules = [key, keyTokens, slots, team]
        expect(yield* acquire(rules, NOW, { tokens: 100 })).toEqual(admitted(9, 900, 4, 0))
        expect(yield* acquire(rules, NOW, { tokens: 100 })).toEqual(refused(3, 60_000, 9, 900, 4, 0))
        // The refused request took nothing from the rules before the one that refused.
        expect(yield* acquire([key, keyTokens, slots], NOW, { tokens: 100 })).toEqual(admitted(8, 800, 3))
      })
    )
  )

  it.effect("reports the remaining units of every rule, in rule order", () =>
    run(
      Effect.gen(function* () {
        const rules = [tokens(fresh("team:tokens"), 60), requests(fresh("user:requests"), 4)]
        expect(yield* acquire(rules, NOW, { tokens: 20 })).toEqual(admitted(40, 3))
        // The refusal shows the rule after the refusing one too, as it stands.
        expect(yield* acquire(rules, NOW, { tokens: 41 })).toEqual(refused(0, 1_000, 40, 3))
      })
    )
  )

  it.effect("a refusal reports what every rule had before the request, which it did not count", () =>
    run(
      Effect.gen(function* () {
        const keyRequests = requests(fresh("key:requests"), 5)
        const slots = parallel(fresh("user:parallel"), 1)
        const teamTokens = tokens(fresh("team:tokens"), 100)
        const rules = [keyRequests, slots, teamTokens]
        expect(yield* acquire(rules, NOW, { tokens: 30, ticketId: "a" })).toEqual(admitted(4, 0, 70))
        // Refused by the slot: the requests rule before it still has 4, not 3.
        expect(yield* acquire(rules, NOW, { tokens: 10 })).toEqual(
          refused(1, RateArithmetic.PARALLEL_RETRY_MILLIS, 4, 0, 70)
        )
        yield* complete(rules, "a", NOW)
        // Refused by the tokens, 10 short at 600 ms each: the free slot shows as free.
        expect(yield* acquire(rules, NOW, { tokens: 80 })).toEqual(refused(2, 6_000, 4, 1, 70))
        // Nothing those refusals saw was counted.
        expect(yield* acquire(rules, NOW, { tokens: 70, ticketId: "b" })).toEqual(admitted(3, 0, 0))
      })
    )
  )

  it.effect("a parallel limit lowered below the leases in flight reports none free", () =>
    run(
      Effect.gen(function* () {
        const bucket = fresh("team:parallel")
        for (const ticketId of ["a", "b"]) yield* acquire([parallel(bucket, 2)], NOW, { ticketId })
        const rules = [parallel(bucket, 1), requests(fresh("team:requests"), 3)]
        expect(yield* acquire(rules, NOW)).toEqual(refused(0, RateArithmetic.PARALLEL_RETRY_MILLIS, 0, 3))
      })
    )
  )
}

const completeTests = (run: Run) => {
  it.effect("corrects tokens after the response: back when fewer were used, more when more", () =>
    run(
      Effect.gen(function* () {
        const rule = [tokens(fresh("key:tokens"), 1_000)]
        expect(yield* acquire(rule, NOW, { tokens: 500, ticketId: "a" })).toEqual(admitted(500))
        yield* complete(rule, "a", NOW, { tokensDelta: -400 })
        expect(yield* acquire(rule, NOW, { tokens: 900, ticketId: "b" })).toEqual(admitted(0))
        yield* complete(rule, "b", NOW, { tokensDelta: -900 })
        yield* complete(rule, "b", NOW, { tokensDelta: 300 })
        expect(yield* acquire(rule, NOW, { tokens: 0 })).toEqual(admitted(600))
        // Giving back more than was charged cannot fill the bucket beyond a minute's worth.
        yield* complete(rule, "b", NOW, { tokensDelta: -5_000 })
        expect(yield* acquire(rule, NOW, { tokens: 0 })).toEqual(admitted(1_000))
      })
    )
  )

  it.effect("charges extra tokens from now once the bucket has refilled", () =>
    run(
      Effect.gen(function* () {
        const rule = [tokens(fresh("key:tokens"), 1_000)]
        expect(yield* acquire(rule, NOW, { tokens: 100, ticketId: "a" })).toEqual(admitted(900))
        yield* complete(rule, "a", NOW + 600_000, { tokensDelta: 200 })
        expect(yield* acquire(rule, NOW + 600_000, { tokens: 0 })).toEqual(admitted(800))
      })
    )
  )

  it.effect("gives the request unit back when a later check refused the request", () =>
    run(
      Effect.gen(function* () {
        const rule = [requests(fresh("key:requests"), 2)]
        expect(yield* acquire(rule, NOW, { ticketId: "a" })).toEqual(admitted(1))
        expect(yield* acquire(rule, NOW, { ticketId: "b" })).toEqual(admitted(0))
        yield* complete(rule, "b", NOW + 1, { refundRequest: true })
        expect(yield* acquire(rule, NOW + 1, { ticketId: "c" })).toEqual(admitted(0))
        // Without a refund, completing changes nothing for requests.
        yield* complete(rule, "c", NOW + 1)
        expect((yield* acquire(rule, NOW + 1))._tag).toBe("Refused")
      })
    )
  )
}

const parallelTests = (run: Run) => {
  it.effect("holds a lease per request in flight and frees it on complete", () =>
    run(
      Effect.gen(function* () {
        const rule = [parallel(fresh("key:parallel"), 2)]
        expect(yield* acquire(rule, NOW, { ticketId: "a" })).toEqual(admitted(1))
        expect(yield* acquire(rule, NOW, { ticketId: "b" })).toEqual(admitted(0))
        expect(yield* acquire(rule, NOW, { ticketId: "c" })).toEqual(
          refused(0, RateArithmetic.PARALLEL_RETRY_MILLIS, 0)
        )
        yield* complete(rule, "a", NOW + 10)
        expect(yield* acquire(rule, NOW + 10, { ticketId: "c" })).toEqual(admitted(0))
      })
    )
  )

  it.effect("completing a ticket twice, or an unknown one, frees no one else's lease", () =>
    run(
      Effect.gen(function* () {
        const rule = [parallel(fresh("key:parallel"), 3)]
        for (const ticketId of ["a", "b", "c"]) yield* acquire(rule, NOW, { ticketId })
        yield* complete(rule, "a", NOW)
        yield* complete(rule, "a", NOW)
        yield* complete(rule, "nobody", NOW)
        expect(yield* acquire(rule, NOW, { ticketId: "d" })).toEqual(admitted(0))
        expect((yield* acquire(rule, NOW, { ticketId: "e" }))._tag).toBe("Refused")
      })
    )
  )

  it.effect("lets a lease lapse at its expiry when nobody completes it", () =>
    run(
      Effect.gen(function* () {
        const rule = [parallel(fresh("key:parallel"), 1)]
        expect(yield* acquire(rule, NOW, { ticketId: "crashed", leaseMillis: 5_000 })).toEqual(admitted(0))
        expect((yield* acquire(rule, NOW + 4_999, { leaseMillis: 5_000 }))._tag).toBe("Refused")
        expect(yield* acquire(rule, NOW + 5_000, { ticketId: "next", leaseMillis: 5_000 })).toEqual(
          admitted(0)
        )
        // Completing the lapsed ticket late does not free the new holder's lease.
        yield* complete(rule, "crashed", NOW + 6_000)
        expect((yield* acquire(rule, NOW + 6_000, { leaseMillis: 5_000 }))._tag).toBe("Refused")
      })
    )
  )
}

const concurrencyTests = (run: Run) => {
  it.effect("admits exactly the limit of many concurrent requests", () =>
    run(
      Effect.gen(function* () {
        const rules = [requests(fresh("key:requests"), 50), parallel(fresh("team:parallel"), 60)]
        const decisions = yield* Effect.all(
          Array.from({ length: 120 }, () => acquire(rules, NOW)),
          { concurrency: "unbounded" }
        )
        expect(decisions.filter((d) => d._tag === "Admitted")).toHaveLength(50)
        // The refused ones took no lease: ten more slots are free.
        const more = yield* Effect.all(
          Array.from({ length: 12 }, () => acquire([parallel(rules[1]?.bucket ?? "", 60)], NOW)),
          { concurrency: "unbounded" }
        )
        expect(more.filter((d) => d._tag === "Admitted")).toHaveLength(10)
      })
    )
  )
}

/** A random sequence of steps, replayed on the store and on the memory store. */
type Op =
  | { readonly _tag: "acquire"; readonly rules: ReadonlyArray<number>; readonly tokens: number }
  | { readonly _tag: "complete"; readonly ticket: number; readonly delta: number; readonly refund: boolean }

const opArbitrary: FastCheck.Arbitrary<{ readonly advance: number; readonly op: Op }> = FastCheck.record({
  advance: FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: 20_000 })),
  op: FastCheck.oneof(
    FastCheck.record({
      _tag: FastCheck.constant("acquire" as const),
      rules: FastCheck.subarray([0, 1, 2, 3], { minLength: 1 }),
      tokens: FastCheck.integer({ min: 0, max: 400 })
    }),
    FastCheck.record({
      _tag: FastCheck.constant("complete" as const),
      ticket: FastCheck.nat(40),
      delta: FastCheck.integer({ min: -300, max: 300 }),
      refund: FastCheck.boolean()
    })
  )
})

const sequenceTest = (run: Run) => {
  it.effect("gives the memory store's decision at every step of a random sequence", () =>
    run(
      Effect.gen(function* () {
        const store = yield* RateLimitStore
        const reference = MemoryRateLimits.make(MemoryRateLimits.makeState())
        const steps = FastCheck.sample(FastCheck.array(opArbitrary, { minLength: 150, maxLength: 150 }), {
          numRuns: 1,
          seed: 20_261_128
        })[0]
        const pool = [
          requests(fresh("seq:key:requests"), 7),
          tokens(fresh("seq:key:tokens"), 997),
          parallel(fresh("seq:team:parallel"), 3),
          requests(fresh("seq:team:requests"), 13)
        ]
        const pick = (indexes: ReadonlyArray<number>) =>
          indexes.flatMap((i) => (pool[i] === undefined ? [] : [pool[i]]))
        let now = NOW
        const outcomes = { admitted: 0, refused: new Set<number>() }
        const admittedTickets: Array<{ id: string; rules: ReadonlyArray<RateRule> }> = []
        for (const [n, step] of (steps ?? []).entries()) {
          now += step.advance
          if (step.op._tag === "acquire") {
            const request: RateAcquire = {
              ticketId: `seq-${n}`,
              rules: pick(step.op.rules),
              tokens: step.op.tokens,
              now,
              leaseMillis: 30_000
            }
            const expected = yield* reference.acquire(request)
            expect(yield* store.acquire(request)).toEqual(expected)
            if (expected._tag === "Admitted") {
              outcomes.admitted++
              admittedTickets.push({ id: request.ticketId, rules: request.rules })
            } else {
              outcomes.refused.add(request.rules[expected.index]?.kind === "parallel" ? 1 : 0)
            }
          } else {
            const ticket = admittedTickets[step.op.ticket % Math.max(1, admittedTickets.length)]
            if (ticket === undefined) continue
            const request: RateComplete = {
              ticketId: ticket.id,
              rules: ticket.rules,
              tokensDelta: step.op.delta,
              refundRequest: step.op.refund,
              now
            }
            yield* reference.complete(request)
            yield* store.complete(request)
          }
        }
        // The sequence is only worth something if it meets both outcomes and both kinds of refusal.
        expect(outcomes.admitted).toBeGreaterThan(20)
        expect([...outcomes.refused].sort()).toEqual([0, 1])
      })
    )
  )
}

const limitsTest = (run: Run) => {
  it.effect("gives the memory store's decisions for limits and costs of every size", () =>
    run(
      Effect.gen(function* () {
        const store = yield* RateLimitStore
        const reference = MemoryRateLimits.make(MemoryRateLimits.makeState())
        const cases = FastCheck.sample(
          FastCheck.record({
            limit: FastCheck.oneof(
              FastCheck.integer({ min: 1, max: 100 }),
              FastCheck.integer({ min: 1, max: 5_000_000 })
            ),
            costs: FastCheck.array(FastCheck.integer({ min: 0, max: 6_000_000 }), {
              minLength: 3,
              maxLength: 3
            }),
            advance: FastCheck.integer({ min: 0, max: 90_000 })
          }),
          { numRuns: 40, seed: 8_000 }
        )
        const seen = new Set<string>()
        for (const [n, sample] of cases.entries()) {
          const rule = tokens(fresh(`sizes:${n}`), sample.limit)
          for (const [i, cost] of sample.costs.entries()) {
            const cheap = Math.floor(cost % (sample.limit + 2))
            const request: RateAcquire = {
              ticketId: `sizes-${n}-${i}`,
              rules: [rule],
              tokens: i === 0 ? cost : cheap,
              now: NOW + i * sample.advance,
              leaseMillis: 1
            }
            const expected = yield* reference.acquire(request)
            expect(yield* store.acquire(request)).toEqual(expected)
            seen.add(
              expected._tag === "Admitted"
                ? "admitted"
                : expected.retryAfterMillis === 60_000
                  ? "too big"
                  : "wait"
            )
          }
        }
        expect([...seen].sort()).toEqual(["admitted", "too big", "wait"])
      })
    )
  )
}

/**
 * Registers the suite for one store; `makeLayer` gives the store each test runs on
 * (fresh or shared: every test names its own buckets).
 */
export const runRateLimitConformance = (
  name: string,
  makeLayer: () => Layer.Layer<RateLimitStore, unknown>
): void => {
  const run: Run = (effect) => Effect.provide(effect, makeLayer())
  describe(name, () => {
    gcraTests(run)
    allOrNothingTests(run)
    completeTests(run)
    parallelTests(run)
    concurrencyTests(run)
    sequenceTest(run)
    limitsTest(run)
  })
}
