import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, FastCheck, Fiber, Layer, Option, Ref, Schedule, TestClock } from "effect"
import { Redis } from "ioredis"
import {
  BudgetPolicy,
  Limits,
  RateArithmetic,
  RateLimited,
  RedisRateLimits,
  StoreUnavailable,
  TeamBudget
} from "../src/index.js"
import { addMember, limits, makeKey, makeOrganization, makeTeam, makeUser } from "./support/fixtures.js"
import { makeServices, testPricing } from "./support/runtime.js"

// "small" costs $1/M prompt and $2/M completion tokens and caps output at 1000 tokens.
const request = (apiKey: string, promptTokens = 10, maxOutputTokens = 10) => ({
  apiKey,
  model: "small",
  promptTokens,
  maxOutputTokens
})

const authorize = (apiKey: string, promptTokens?: number, maxOutputTokens?: number) =>
  Effect.flatMap(BudgetPolicy.BudgetPolicy, (policy) =>
    policy.authorize(request(apiKey, promptTokens, maxOutputTokens))
  )

/** The refusal of an authorize that must be rate limited. */
const refusal = (apiKey: string, promptTokens?: number, maxOutputTokens?: number) =>
  Effect.flatMap(Effect.either(authorize(apiKey, promptTokens, maxOutputTokens)), (result) =>
    Either.isLeft(result) && result.left instanceof RateLimited
      ? Effect.succeed(result.left)
      : Effect.dieMessage(
          `expected a rate limit, got ${Either.isLeft(result) ? result.left._tag : "an admission"}`
        )
  )

const rateLimits = (fields: { rpm?: number; tpm?: number; parallel?: number }): Limits.Limits =>
  new Limits.Limits({
    ...Limits.none,
    rpmLimit: Option.fromNullable(fields.rpm),
    tpmLimit: Option.fromNullable(fields.tpm),
    maxParallelRequests: Option.fromNullable(fields.parallel)
  })

describe("RateArithmetic", () => {
  it.prop(
    "a burst at any time of day admits exactly `limit` units, then refuses",
    [
      FastCheck.integer({ min: 1, max: 20_000 }),
      FastCheck.integer({ min: 1_600_000_000_000, max: 2_500_000_000_000 })
    ],
    ([limit, now]) => {
      let tat = now
      let admitted = 0
      for (let i = 0; i <= limit; i++) {
        const outcome = RateArithmetic.gcra(tat, now, limit, 1)
        if (!outcome.admitted) break
        tat = outcome.tat
        admitted++
        if (outcome.remaining !== limit - admitted) break
      }
      expect(admitted).toBe(limit)
      // One interval later exactly one more passes.
      const later = Math.ceil(now + RateArithmetic.intervalMillis(limit))
      expect(RateArithmetic.gcra(tat, later, limit, 1).admitted).toBe(true)
    },
    { fastCheck: { numRuns: 40 } }
  )

  it("a cost above the limit is refused with a full window to wait, and nothing moves", () => {
    expect(RateArithmetic.gcra(0, 1000, 100, 101)).toEqual({
      admitted: false,
      tat: 0,
      remaining: 100,
      retryAfterMillis: 60_000
    })
  })

  it("a correction charges overuse from now and never gives back below now", () => {
    expect(RateArithmetic.correct(0, 10_000, 3, 1)).toBe(30_000)
    expect(RateArithmetic.correct(50_000, 10_000, 3, -1)).toBe(30_000)
    expect(RateArithmetic.correct(15_000, 10_000, 3, -1)).toBe(10_000)
  })
})

describe("RateLimiter", () => {
  it.effect("rpm 3: three pass at once, the fourth waits exactly one interval, to the millisecond", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ alias: "ci-bot", limits: rateLimits({ rpm: 3 }) })
      yield* TestClock.setTime(1_000_000)
      for (let i = 0; i < 3; i++) yield* authorize(key)
      const fourth = yield* refusal(key)
      expect(fourth).toMatchObject({
        scope: "key",
        id: "ci-bot",
        limitType: "requests",
        limit: 3,
        retryAfterSeconds: 20,
        limitRequests: 3,
        remainingRequests: 0
      })
      // Retry-After rounds up to the second: 15 s left, then 14.5 s left.
      yield* TestClock.adjust("5 seconds")
      expect((yield* refusal(key)).retryAfterSeconds).toBe(15)
      yield* TestClock.adjust("500 millis")
      expect((yield* refusal(key)).retryAfterSeconds).toBe(15)
      yield* TestClock.setTime(1_000_000 + 19_999)
      expect((yield* refusal(key)).retryAfterSeconds).toBe(1)
      yield* TestClock.setTime(1_000_000 + 20_000)
      const admitted = yield* authorize(key)
      expect(Option.map(admitted.rate, (ticket) => ticket.remaining)).toEqual(Option.some([0]))
      expect((yield* refusal(key)).retryAfterSeconds).toBe(20)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("rpm 7 (not a divisor of a minute) admits exactly 7 a minute", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ rpm: 7 }) })
      yield* TestClock.setTime(1_700_000_000_123)
      for (let i = 0; i < 7; i++) yield* authorize(key)
      expect((yield* refusal(key)).retryAfterSeconds).toBe(9)
      yield* TestClock.adjust("8571 millis")
      yield* refusal(key)
      yield* TestClock.adjust("1 millis")
      yield* authorize(key)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("tpm: tokens are charged at admission by their estimate and corrected at settle", () =>
    Effect.gen(function* () {
      const policy = yield* BudgetPolicy.BudgetPolicy
      const key = yield* makeKey({ alias: "tok", limits: rateLimits({ tpm: 1000 }) })
      // Each request holds 100 prompt + 300 output = 400 tokens.
      const first = yield* authorize(key, 100, 300)
      expect(Option.map(first.rate, (ticket) => ticket.remaining)).toEqual(Option.some([600]))
      yield* authorize(key, 100, 300)
      const third = yield* refusal(key, 100, 300)
      // 1200 of 1000: 200 tokens at 60 ms each must come back first.
      expect(third).toMatchObject({ limitType: "tokens", limitTokens: 1000, remainingTokens: 200 })
      expect(third.retryAfterSeconds).toBe(12)
      // The first used 100 tokens, not 400: 300 come back, and the third fits.
      yield* policy.settle(first, { promptTokens: 80, completionTokens: 20 })
      const admitted = yield* authorize(key, 100, 300)
      expect(Option.map(admitted.rate, (ticket) => ticket.remaining)).toEqual(Option.some([100]))
      // Using more than estimated charges the excess.
      yield* policy.settle(admitted, { promptTokens: 100, completionTokens: 400 })
      const after = yield* refusal(key, 1, 0)
      expect(after.remainingTokens).toBe(0)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect(
    "a burst of estimates cannot exceed tpm: 50 concurrent requests of 400 against 1000 admit 2",
    () =>
      Effect.gen(function* () {
        const key = yield* makeKey({ limits: rateLimits({ tpm: 1000 }) })
        const results = yield* Effect.all(
          Array.from({ length: 50 }, () => Effect.either(authorize(key, 100, 300))),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Either.isRight)).toHaveLength(2)
        expect(results.filter((r) => Either.isLeft(r) && r.left._tag === "RateLimited")).toHaveLength(48)
      }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a request needing more tokens than tpm allows is refused with a clear message", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ alias: "tiny", limits: rateLimits({ tpm: 500 }) })
      const refused = yield* refusal(key, 100, 1000)
      expect(refused.requestedTokens).toBe(1100)
      expect(refused.retryAfterSeconds).toBe(60)
      expect(refused.message).toBe(
        "This request may use up to 1100 tokens, more than the 500 tokens a minute allowed for key tiny. " +
          "Lower max_tokens or shorten the prompt."
      )
      // Nothing was counted: a request that fits passes.
      yield* authorize(key, 100, 400)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a request the budget refuses gives back its request unit and tokens", () =>
    Effect.gen(function* () {
      const policy = yield* BudgetPolicy.BudgetPolicy
      // "big" costs $0.01 a token: 1000 + 1000 tokens hold $20 of the team's $30.
      yield* makeTeam("thrifty", limits({ maxBudget: 30 }))
      const key = yield* makeKey({ team: "thrifty", limits: rateLimits({ rpm: 2, tpm: 4000 }) })
      const big = { apiKey: key, model: "big", promptTokens: 1000, maxOutputTokens: 1000 }
      const first = yield* policy.authorize(big)
      const refused = yield* Effect.flip(policy.authorize(big))
      expect(refused._tag).toBe("BudgetExceeded")
      yield* policy.release(first)
      // Released: the first still counts as a request, its tokens came back.
      const second = yield* policy.authorize(big)
      expect(Option.map(second.rate, (ticket) => ticket.remaining)).toEqual(Option.some([0, 2000]))
      yield* policy.release(second)
      const third = yield* Effect.flip(policy.authorize(big))
      // Both kinds' headers: the released requests' tokens are all back.
      expect(third).toMatchObject({
        _tag: "RateLimited",
        limitType: "requests",
        scope: "key",
        limitRequests: 2,
        remainingRequests: 0,
        limitTokens: 4000,
        remainingTokens: 4000
      })
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("200 concurrent requests against rpm 50 on one key: exactly 50 admitted", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ rpm: 50 }) })
      const results = yield* Effect.all(
        Array.from({ length: 200 }, () => Effect.either(authorize(key))),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight)).toHaveLength(50)
      expect(results.filter((r) => Either.isLeft(r) && r.left._tag === "RateLimited")).toHaveLength(150)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect(
    "max_parallel_requests 3 with 30 slow requests: never more than 3 in flight, all done, slots freed",
    () =>
      Effect.gen(function* () {
        const policy = yield* BudgetPolicy.BudgetPolicy
        const key = yield* makeKey({ limits: rateLimits({ parallel: 3 }) })
        const inFlight = yield* Ref.make(0)
        const most = yield* Ref.make(0)
        const refusals = yield* Ref.make(0)
        const admit = authorize(key).pipe(
          Effect.tapError((error) =>
            error._tag === "RateLimited" ? Ref.update(refusals, (n) => n + 1) : Effect.void
          ),
          // A 429 for a parallel limit says come back in a second: each caller does.
          Effect.retry({
            schedule: Schedule.spaced("1 second"),
            while: (error) => error._tag === "RateLimited" && error.limitType === "parallel_requests"
          })
        )
        const call = Effect.gen(function* () {
          const admission = yield* admit
          const now = yield* Ref.updateAndGet(inFlight, (n) => n + 1)
          yield* Ref.update(most, (m) => Math.max(m, now))
          yield* Effect.sleep("3 seconds")
          yield* Ref.update(inFlight, (n) => n - 1)
          yield* policy.settle(admission, { promptTokens: 10, completionTokens: 10 })
        })
        const fiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 30 }, () => call),
            { concurrency: "unbounded" }
          )
        )
        for (let i = 0; i < 60 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("1 second")
        expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
        expect(yield* Ref.get(most)).toBe(3)
        expect(yield* Ref.get(refusals)).toBeGreaterThan(0)
        // Every lease was freed: three fit again, the fourth does not.
        for (let i = 0; i < 3; i++) yield* authorize(key)
        expect((yield* refusal(key)).limitType).toBe("parallel_requests")
      }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a lease that is never completed expires after the lease TTL", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ parallel: 1 }) })
      yield* authorize(key)
      yield* TestClock.adjust("59999 millis")
      expect((yield* refusal(key)).limitType).toBe("parallel_requests")
      yield* TestClock.adjust("1 millis")
      yield* authorize(key)
    }).pipe(Effect.provide(makeServices({ policy: { rateLimiter: { leaseTtl: "1 minute" } } })))
  )

  it.effect("each scope kind limits its requests and the refusal names it", () =>
    Effect.gen(function* () {
      const oneRpm = rateLimits({ rpm: 1 })
      const refusedBy = (key: string) =>
        Effect.zipRight(authorize(key), refusal(key)).pipe(Effect.map(({ scope, id }) => ({ scope, id })))

      expect(yield* refusedBy(yield* makeKey({ alias: "key-a", limits: oneRpm }))).toEqual({
        scope: "key",
        id: "key-a"
      })

      yield* makeUser("u-limited", oneRpm)
      expect(yield* refusedBy(yield* makeKey({ user: "u-limited" }))).toEqual({
        scope: "user",
        id: "u-limited"
      })

      yield* makeTeam("t-members")
      yield* makeUser("member")
      yield* addMember("t-members", "member", Option.some(oneRpm))
      expect(yield* refusedBy(yield* makeKey({ team: "t-members", user: "member" }))).toEqual({
        scope: "membership",
        id: "t-members/member"
      })

      yield* makeTeam("t-limited", oneRpm)
      expect(yield* refusedBy(yield* makeKey({ team: "t-limited" }))).toEqual({
        scope: "team",
        id: "t-limited"
      })

      yield* makeOrganization("o-limited", oneRpm)
      yield* makeTeam("t-in-org", Limits.none, { organizationId: "o-limited" })
      expect(yield* refusedBy(yield* makeKey({ team: "t-in-org" }))).toEqual({
        scope: "organization",
        id: "o-limited"
      })

      // Every key of a limited team shares the team's counter.
      const other = yield* makeKey({ team: "t-limited" })
      expect((yield* refusal(other)).scope).toBe("team")
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a request that no scope limits carries no ticket", () =>
    Effect.gen(function* () {
      const key = yield* makeKey()
      const admission = yield* authorize(key)
      expect(Option.isNone(admission.rate)).toBe(true)
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("rpm 0 lets nothing through and touches no counter", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ rpm: 0, tpm: 1000 }) })
      const refused = yield* refusal(key)
      expect(refused.limit).toBe(0)
      // The counters were not asked: of the tokens only the limit is known.
      expect(refused).toMatchObject({ limitRequests: 0, remainingRequests: 0, limitTokens: 1000 })
      expect(refused.remainingTokens).toBeUndefined()
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a refusal shows, per kind, the rule with the least left over every scope", () =>
    Effect.gen(function* () {
      yield* makeTeam("narrow", rateLimits({ rpm: 2, tpm: 3000 }))
      const key = yield* makeKey({ team: "narrow", limits: rateLimits({ rpm: 5, tpm: 1000 }) })
      yield* authorize(key, 100, 300)
      yield* authorize(key, 100, 300)
      // The key's tokens refuse (400 wanted, 200 left); the team has no request left.
      expect(yield* refusal(key, 100, 300)).toMatchObject({
        scope: "key",
        limitType: "tokens",
        limitRequests: 2,
        remainingRequests: 0,
        limitTokens: 1000,
        remainingTokens: 200
      })
    }).pipe(Effect.provide(makeServices()))
  )
})

describe("RateLimiter over a store that cannot be reached", () => {
  // A real Redis client aimed at a port nobody listens on: with no offline queue, every
  // command fails at once.
  const unreachable = Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new Redis(1, "127.0.0.1", { lazyConnect: true, enableOfflineQueue: false })),
        (client) => Effect.sync(() => client.disconnect())
      ),
      (client) => RedisRateLimits.layer({ client })
    )
  )

  it.live("fails closed with StoreUnavailable naming the rate-limit store", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ rpm: 10 }) })
      const error = yield* Effect.flip(authorize(key))
      expect(error).toBeInstanceOf(StoreUnavailable)
      if (error._tag === "StoreUnavailable") expect(error.operation).toMatch(/^rate-limit store/)
      // A key without limits never asks the limiter's store.
      yield* authorize(yield* makeKey())
    }).pipe(
      Effect.provide(TeamBudget.layerMemory({ pricing: testPricing, rateLimits: unreachable })),
      Effect.scoped
    )
  )

  it.live("with failOpen, admits without counting", () =>
    Effect.gen(function* () {
      const key = yield* makeKey({ limits: rateLimits({ rpm: 1 }) })
      const first = yield* authorize(key)
      const second = yield* authorize(key)
      expect([first.rate, second.rate].every(Option.isNone)).toBe(true)
    }).pipe(
      Effect.provide(
        TeamBudget.layerMemory({ pricing: testPricing, policy: { failOpen: true }, rateLimits: unreachable })
      ),
      Effect.scoped
    )
  )
})
