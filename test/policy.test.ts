import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Option, TestClock } from "effect"
import {
  BudgetPolicy,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Limits,
  MembershipRepo,
  Money,
  SpendLedger,
  SpendLogRepo,
  TeamRepo,
  Token
} from "../src/index.js"
import {
  addMember,
  limits,
  makeKey,
  makeOrganization,
  makeTeam,
  makeUser,
  teamId,
  usd,
  userId
} from "./support/fixtures.js"
import { makeServices } from "./support/runtime.js"

// "big" costs $0.01 a token: 1000 prompt + 1000 output tokens = $20 per request.
const bigRequest = (apiKey: string) => ({ apiKey, model: "big", promptTokens: 1000, maxOutputTokens: 1000 })
const bigUsage = { promptTokens: 1000, completionTokens: 1000 }

const callOnce = (apiKey: string) =>
  Effect.gen(function* () {
    const policy = yield* BudgetPolicy.BudgetPolicy
    const admission = yield* policy.authorize(bigRequest(apiKey))
    return yield* policy.settle(admission, bigUsage)
  })

const teamSpend = (id: string) =>
  Effect.gen(function* () {
    const team = yield* Effect.flatMap(TeamRepo, (teams) => teams.find(teamId(id)))
    if (Option.isNone(team)) return yield* Effect.dieMessage(`team ${id} is missing`)
    return team.value.spend
  })

describe("BudgetPolicy", () => {
  it.effect("SPEC 1: a cleared member budget falls back to the team pool", () =>
    Effect.gen(function* () {
      yield* makeTeam("eng", limits({ maxBudget: 1000, budgetDuration: "30d" }))
      yield* makeUser("alice")
      yield* addMember("eng", "alice", Option.some(limits({ maxBudget: 50 })))
      const key = yield* makeKey({ team: "eng", user: "alice" })

      // $50 member budget: two $20 calls pass, the third is refused by the membership.
      yield* callOnce(key)
      yield* callOnce(key)
      const refused = yield* Effect.either(callOnce(key))
      expect(Either.isLeft(refused) && refused.left._tag === "BudgetExceeded" && refused.left.scope).toBe(
        "membership"
      )

      // Clear the member budget: the membership reads none, requests pass bounded by the team pool.
      const memberships = yield* MembershipRepo
      yield* memberships.update(teamId("eng"), userId("alice"), { limits: { maxBudget: Option.none() } })
      yield* Effect.flatMap(Invalidation.Invalidation, (i) => i.publish)
      const membership = yield* memberships.find(teamId("eng"), userId("alice"))
      expect(Option.map(membership, (m) => Option.isNone(m.budget))).toEqual(Option.some(true))

      let passed = 2
      for (;;) {
        const result = yield* Effect.either(callOnce(key))
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("BudgetExceeded")
          if (result.left._tag === "BudgetExceeded") expect(result.left.scope).toBe("team")
          break
        }
        passed++
      }
      expect(passed).toBe(50)
      const spend = yield* teamSpend("eng")
      expect(spend.current).toBe(usd(1000))
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect(
    "a member cap refuses while the team pool has money; the team pool refuses a member without a cap",
    () =>
      Effect.gen(function* () {
        yield* makeTeam("t", limits({ maxBudget: 100 }))
        yield* makeUser("capped")
        yield* makeUser("free")
        yield* addMember("t", "capped", Option.some(limits({ maxBudget: 30 })))
        yield* addMember("t", "free")
        const capped = yield* makeKey({ team: "t", user: "capped" })
        const uncapped = yield* makeKey({ team: "t", user: "free" })

        yield* callOnce(capped)
        const memberRefusal = yield* Effect.flip(callOnce(capped))
        expect(memberRefusal).toMatchObject({ _tag: "BudgetExceeded", scope: "membership", id: "t/capped" })
        if (memberRefusal._tag === "BudgetExceeded") {
          expect(memberRefusal.spend).toBe(usd(20))
          expect(memberRefusal.maxBudget).toBe(usd(30))
          expect(memberRefusal.requested).toBe(usd(20))
        }

        // The uncapped member spends the rest of the pool: 100 - 20 = 80 → 4 calls.
        for (let i = 0; i < 4; i++) yield* callOnce(uncapped)
        const teamRefusal = yield* Effect.flip(callOnce(uncapped))
        expect(teamRefusal).toMatchObject({ _tag: "BudgetExceeded", scope: "team", id: "t" })
        expect(teamRefusal.message).toContain("team t")
      }).pipe(Effect.provide(makeServices()))
  )

  it.effect("every refusal names its scope: key, user, organization, end user", () =>
    Effect.gen(function* () {
      yield* makeOrganization("org", limits({ maxBudget: 10 }))
      yield* makeTeam("ot", Limits.none, { organizationId: "org" })
      yield* makeUser("u", limits({ maxBudget: 10 }))
      const keyCapped = yield* makeKey({ limits: limits({ maxBudget: 10 }), alias: "capped-key" })
      const userKey = yield* makeKey({ user: "u" })
      const orgKey = yield* makeKey({ team: "ot" })
      const policy = yield* BudgetPolicy.BudgetPolicy
      expect(yield* Effect.flip(policy.authorize(bigRequest(keyCapped)))).toMatchObject({
        scope: "key",
        id: "capped-key"
      })
      expect(yield* Effect.flip(policy.authorize(bigRequest(userKey)))).toMatchObject({
        scope: "user",
        id: "u"
      })
      expect(yield* Effect.flip(policy.authorize(bigRequest(orgKey)))).toMatchObject({
        scope: "organization",
        id: "org"
      })
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("authentication: unknown, missing, expired and blocked keys; model allow-lists", () =>
    Effect.gen(function* () {
      const policy = yield* BudgetPolicy.BudgetPolicy
      const auth = yield* KeyAuth.KeyAuth
      expect(yield* Effect.flip(auth.authenticate("sk-nope"))).toMatchObject({ reason: "unknown" })
      expect(yield* Effect.flip(auth.authenticate(""))).toMatchObject({ reason: "missing" })

      const expiring = yield* makeKey({ expiresInMillis: 60_000 })
      yield* auth.authenticate(expiring)
      yield* TestClock.adjust("61 seconds")
      expect(yield* Effect.flip(auth.authenticate(expiring))).toMatchObject({ _tag: "KeyExpired" })

      yield* makeTeam("blocked-team")
      const teamKey = yield* makeKey({ team: "blocked-team" })
      yield* auth.authenticate(teamKey)
      yield* Effect.flatMap(TeamRepo, (teams) => teams.update(teamId("blocked-team"), { blocked: true }))
      yield* Effect.flatMap(Invalidation.Invalidation, (i) => i.publish)
      yield* Effect.yieldNow()
      expect(yield* Effect.flip(auth.authenticate(teamKey))).toMatchObject({ _tag: "Blocked", scope: "team" })

      const limited = yield* makeKey({ models: ["small"] })
      expect(yield* Effect.flip(policy.authorize(bigRequest(limited)))).toMatchObject({
        _tag: "ModelNotAllowed",
        scope: "key"
      })
      const unknownModel = yield* Effect.flip(policy.authorize({ ...bigRequest(limited), model: "mystery" }))
      expect(unknownModel._tag).toBe("ModelNotAllowed")
      const anyModel = yield* makeKey()
      expect(
        yield* Effect.flip(policy.authorize({ ...bigRequest(anyModel), model: "mystery" }))
      ).toMatchObject({
        _tag: "PriceUnknown"
      })
      // A refused request holds nothing anywhere.
      const key = yield* Effect.flatMap(KeyRepo, (keys) => keys.find(Token.hashToken(anyModel)))
      expect(Option.map(key, (k) => k.spend.held)).toEqual(Option.some(Money.zero))
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("a blocked key stops working as soon as the admin write is announced", () =>
    Effect.gen(function* () {
      const auth = yield* KeyAuth.KeyAuth
      const token = yield* makeKey()
      yield* auth.authenticate(token)
      const keys = yield* KeyRepo
      yield* keys.update(Token.hashToken(token), { blocked: true })
      // Still cached until the write is announced: the announcement is what makes it stop.
      yield* auth.authenticate(token)
      yield* Effect.flatMap(Invalidation.Invalidation, (i) => i.publish)
      yield* Effect.yieldNow()
      expect(yield* Effect.flip(auth.authenticate(token))).toMatchObject({ _tag: "Blocked", scope: "key" })
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("500 concurrent requests against one team budget: exactly what fits is admitted", () =>
    Effect.gen(function* () {
      // $1000 pool, $20 a request: exactly 50 of 500 fit.
      yield* makeTeam("hot", limits({ maxBudget: 1000 }))
      const keys = yield* Effect.all(Array.from({ length: 10 }, () => makeKey({ team: "hot" })))
      const policy = yield* BudgetPolicy.BudgetPolicy
      const results = yield* Effect.all(
        Array.from({ length: 500 }, (_, i) =>
          Effect.either(
            Effect.gen(function* () {
              const admission = yield* policy.authorize(bigRequest(keys[i % keys.length] ?? ""))
              yield* Effect.yieldNow()
              yield* policy.settle(admission, bigUsage)
            })
          )
        ),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight).length).toBe(50)
      const spend = yield* teamSpend("hot")
      expect(spend.current).toBe(usd(1000))
      expect(spend.held).toBe(Money.zero)
      const logs = yield* Effect.flatMap(SpendLogRepo, (repo) =>
        repo.query({ teamId: teamId("hot"), limit: 10_000 })
      )
      expect(logs.length).toBe(50)
      expect(logs.reduce((sum, log) => sum + log.cost, 0n)).toBe(usd(1000))
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect(
    "500 concurrent requests, some released, some costing less than held: no overspend, no residue",
    () =>
      Effect.gen(function* () {
        yield* makeTeam("mixed", limits({ maxBudget: 1000 }))
        const keys = yield* Effect.all(Array.from({ length: 10 }, () => makeKey({ team: "mixed" })))
        const policy = yield* BudgetPolicy.BudgetPolicy
        const fiber = yield* Effect.all(
          Array.from({ length: 500 }, (_, i) =>
            Effect.gen(function* () {
              const admission = yield* policy.authorize(bigRequest(keys[i % keys.length] ?? ""))
              yield* Effect.sleep(Duration.millis(i % 7))
              // One in five calls fails upstream and releases its hold; the rest use a random part of the cap.
              if (i % 5 === 0) {
                yield* policy.release(admission)
                return Money.zero
              }
              const settlement = yield* policy.settle(admission, {
                promptTokens: 1000,
                completionTokens: i % 1000
              })
              return settlement.cost
            }).pipe(Effect.orElseSucceed(() => Money.zero))
          ),
          { concurrency: "unbounded" }
        ).pipe(Effect.fork)
        yield* TestClock.adjust("10 millis")
        const costs = yield* Fiber.join(fiber)
        const charged = costs.reduce((sum, cost) => sum + cost, 0n)
        const spend = yield* teamSpend("mixed")
        expect(spend.current).toBe(charged)
        expect(spend.current <= usd(1000)).toBe(true)
        expect(spend.held).toBe(Money.zero)
        const logs = yield* Effect.flatMap(SpendLogRepo, (repo) =>
          repo.query({ teamId: teamId("mixed"), limit: 10_000 })
        )
        expect(logs.reduce((sum, log) => sum + log.cost, 0n)).toBe(charged)
      }).pipe(Effect.provide(makeServices()))
  )

  it.effect("the hold of a crashed caller expires after the TTL and the money returns", () =>
    Effect.gen(function* () {
      yield* makeTeam("crash", limits({ maxBudget: 20 }))
      const key = yield* makeKey({ team: "crash" })
      const policy = yield* BudgetPolicy.BudgetPolicy
      yield* policy.authorize(bigRequest(key)) // never settled: the caller "crashed"
      expect((yield* Effect.flip(policy.authorize(bigRequest(key))))._tag).toBe("BudgetExceeded")
      expect((yield* teamSpend("crash")).held).toBe(usd(20))
      yield* TestClock.adjust(Duration.minutes(2))
      expect(yield* Effect.flatMap(SpendLedger, (ledger) => ledger.reclaimExpired())).toBe(1)
      expect((yield* teamSpend("crash")).held).toBe(Money.zero)
      yield* callOnce(key)
      expect((yield* teamSpend("crash")).current).toBe(usd(20))
    }).pipe(Effect.provide(makeServices({ holdTtl: "1 minute" })))
  )

  it.effect("optimistic mode admits while spend is under the cap and charges after", () =>
    Effect.gen(function* () {
      yield* makeTeam("opt", limits({ maxBudget: 30 }))
      const key = yield* makeKey({ team: "opt" })
      yield* callOnce(key)
      yield* callOnce(key) // spend 20 < 30: admitted, then charged to 40
      expect((yield* teamSpend("opt")).current).toBe(usd(40))
      expect((yield* Effect.flip(callOnce(key)))._tag).toBe("BudgetExceeded")
    }).pipe(Effect.provide(makeServices({ policy: { mode: "optimistic" } })))
  )

  it.effect("settling twice never charges twice", () =>
    Effect.gen(function* () {
      yield* makeTeam("twice")
      const key = yield* makeKey({ team: "twice" })
      const policy = yield* BudgetPolicy.BudgetPolicy
      const admission = yield* policy.authorize(bigRequest(key))
      yield* policy.settle(admission, bigUsage)
      const again = yield* Effect.exit(policy.settle(admission, bigUsage))
      expect(Exit.isFailure(again)).toBe(true)
      expect((yield* teamSpend("twice")).current).toBe(usd(20))
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("the estimate uses the model's output cap when the request sets none", () =>
    Effect.gen(function* () {
      const key = yield* makeKey()
      const policy = yield* BudgetPolicy.BudgetPolicy
      // "small": 1000 prompt tokens at $1/M + its 1000-token output cap at $2/M = $0.003.
      const admission = yield* policy.authorize({ apiKey: key, model: "small", promptTokens: 1000 })
      expect(admission.estimate).toBe(usd(0.003))
      expect(admission.hold.amount).toBe(usd(0.003))
    }).pipe(Effect.provide(makeServices()))
  )
})
