/**
 * Conformance: holds, settlements, releases and expiry on every scope (SPEC 3, 7).
 * Written for the default hold TTL of 15 minutes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect, Option, TestClock } from "effect"
import { BudgetRepo, EndUserRepo, type Scope, SpendLedger, SpendLogRepo } from "../../src/index.js"
import { keyId, limits, teamId, usd, userId } from "../support/fixtures.js"
import {
  budgetId,
  endUserId,
  failure,
  heldOn,
  hold,
  holdRequest,
  logDraft,
  makeWorld,
  type Run,
  settle,
  some,
  spendOf
} from "./fixtures.js"

export const ledgerTests = (run: Run): void => {
  describe("SpendLedger", () => {
    it.effect("the member's cap refuses while the team pool still has money", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({
            member: limits({ maxBudget: 2 }),
            team: limits({ maxBudget: 100 })
          })
          const first = yield* hold(world.scopes, usd(1.5))
          expect(first.amount).toBe(usd(1.5))
          const refused = yield* failure(hold(world.scopes, usd(1)), "BudgetExceeded")
          expect(refused.scope).toBe("membership")
          expect(refused.id).toBe("eng/alice")
          expect(refused.spend).toBe(0n)
          expect(refused.held).toBe(usd(1.5))
          expect(refused.maxBudget).toBe(usd(2))
          expect(refused.requested).toBe(usd(1))
          expect(Option.isNone(refused.resetAt)).toBe(true)
          // What fits still passes.
          yield* hold(world.scopes, usd(0.5))
        })
      )
    )

    it.effect("the team pool refuses while the member has no cap of their own", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          const refused = yield* failure(hold(world.scopes, usd(1.5)), "BudgetExceeded")
          expect(refused.scope).toBe("team")
          expect(refused.id).toBe("eng")
          expect(refused.maxBudget).toBe(usd(1))
        })
      )
    )

    it.effect("the first refusing scope in scope order names the refusal; a key by its label", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({
            key: limits({ maxBudget: 1 }),
            team: limits({ maxBudget: 1 }),
            organization: limits({ maxBudget: 1 })
          })
          const refused = yield* failure(hold(world.scopes, usd(2)), "BudgetExceeded")
          expect(refused.scope).toBe("key")
          expect(refused.id).toBe("alice-key")
          expect(refused.message).not.toContain(world.keyHash)
          const org = yield* failure(hold([world.organization, world.global], usd(2)), "BudgetExceeded")
          expect(org.scope).toBe("organization")
          expect(org.id).toBe("acme")
        })
      )
    )

    it.effect("all or nothing: after a refusal nothing is held anywhere", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ user: limits({ maxBudget: 10 }), team: limits({ maxBudget: 1 }) })
          yield* failure(hold(world.scopes, usd(2)), "BudgetExceeded")
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
        })
      )
    )

    it.effect("the global budget binds every request", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld()
          yield* Effect.flatMap(BudgetRepo, (budgets) =>
            budgets.upsert(budgetId("global"), { maxBudget: Option.some(usd(1)) })
          )
          const refused = yield* failure(hold(world.scopes, usd(1.01)), "BudgetExceeded")
          expect(refused.scope).toBe("global")
          expect(refused.id).toBe("global")
          yield* hold(world.scopes, usd(1))
        })
      )
    )

    it.effect("a hold names the tightest binding scope, after the hold", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ member: limits({ maxBudget: 5 }), team: limits({ maxBudget: 3 }) })
          const held = yield* hold(world.scopes, usd(1))
          const tightest = yield* some(held.tightest)
          expect(tightest.scope).toEqual(world.team)
          expect(tightest.remaining).toBe(usd(2))
          expect(tightest.maxBudget).toBe(usd(3))
          const unbound = yield* hold([world.user, world.global], usd(1))
          expect(Option.isNone(unbound.tightest)).toBe(true)
        })
      )
    )

    it.effect("settle moves held to spend on every scope and writes one spend log row", () =>
      run(
        Effect.gen(function* () {
          yield* TestClock.setTime(Date.UTC(2025, 5, 1, 12))
          const world = yield* makeWorld({
            member: limits({ maxBudget: 5 }),
            team: limits({ maxBudget: 10 })
          })
          const held = yield* hold(world.scopes, usd(1))
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => usd(1)))
          yield* TestClock.adjust("2 seconds")
          const settlement = yield* settle(world, held, usd(0.4))
          expect(settlement.cost).toBe(usd(0.4))
          expect(settlement.late).toBe(false)
          expect((yield* some(settlement.tightest)).remaining).toBe(usd(4.6))
          for (const scope of world.scopes) {
            const spend = yield* spendOf(scope)
            expect(spend.held).toBe(0n)
            expect(spend.total).toBe(usd(0.4))
            expect(spend.current).toBe(usd(0.4))
          }
          const rows = yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))
          expect(rows.length).toBe(1)
          const row = rows[0]
          expect(row?.cost).toBe(usd(0.4))
          expect(row?.keyId).toBe(world.keyId)
          expect(row?.model).toBe("gpt-test")
          expect(row?.promptTokens).toBe(10)
          expect(row?.completionTokens).toBe(20)
          expect(row?.status).toBe("success")
          expect(Option.map(Option.fromNullable(row), (r) => DateTime.toEpochMillis(r.endedAt))).toEqual(
            Option.some(Date.UTC(2025, 5, 1, 12, 0, 2))
          )
        })
      )
    )

    it.effect("a scope named twice in one request is held, charged and released once", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          const twice = [...world.scopes, world.team, world.key]
          const held = yield* hold(twice, usd(0.6))
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => usd(0.6)))
          yield* settle(world, held, usd(0.5))
          for (const scope of world.scopes) expect((yield* spendOf(scope)).total).toBe(usd(0.5))
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
          // $0.50 is left on the team: $0.50 fits, once.
          const released = yield* hold(twice, usd(0.5))
          yield* Effect.flatMap(SpendLedger, (ledger) => ledger.release(released))
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
          yield* failure(hold(twice, usd(0.6)), "BudgetExceeded")
        })
      )
    )

    it.effect("a double settle is HoldClosed and never charges twice; release after settle too", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
          const held = yield* hold(world.scopes, usd(1))
          yield* settle(world, held, usd(1))
          const again = yield* failure(settle(world, held, usd(1)), "HoldClosed")
          expect(again.state).toBe("settled")
          const release = yield* failure(
            Effect.flatMap(SpendLedger, (l) => l.release(held)),
            "HoldClosed"
          )
          expect(release.state).toBe("settled")
          expect((yield* spendOf(world.team)).total).toBe(usd(1))
          expect((yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))).length).toBe(1)
        })
      )
    )

    it.effect("release gives the held money back; a released hold cannot be settled", () =>
      run(
        Effect.gen(function* () {
          const ledger = yield* SpendLedger
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          const held = yield* hold(world.scopes, usd(1))
          yield* failure(hold(world.scopes, usd(0.01)), "BudgetExceeded")
          yield* ledger.release(held)
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
          expect((yield* spendOf(world.team)).total).toBe(0n)
          yield* hold(world.scopes, usd(1))
          expect((yield* failure(settle(world, held, usd(1)), "HoldClosed")).state).toBe("released")
          expect((yield* failure(ledger.release(held), "HoldClosed")).state).toBe("released")
          expect(yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))).toEqual([])
        })
      )
    )

    it.effect("strict holds the worst case; optimistic only checks spend < max and holds nothing", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          yield* settle(world, yield* hold(world.scopes, usd(0.9)), usd(0.9))
          const strict = yield* failure(hold(world.scopes, usd(0.2)), "BudgetExceeded")
          expect(strict.spend).toBe(usd(0.9))

          const optimistic = yield* hold(world.scopes, usd(0.2), "optimistic")
          expect(optimistic.amount).toBe(0n)
          expect((yield* spendOf(world.team)).held).toBe(0n)
          yield* settle(world, optimistic, usd(0.2))
          expect((yield* spendOf(world.team)).current).toBe(usd(1.1))

          const over = yield* failure(hold(world.scopes, usd(0.01), "optimistic"), "BudgetExceeded")
          expect(over.scope).toBe("team")
          expect(over.spend).toBe(usd(1.1))
        })
      )
    )

    it.effect(
      "an expired hold is reclaimed at the TTL (not a millisecond before) and its money returns",
      () =>
        run(
          Effect.gen(function* () {
            const ledger = yield* SpendLedger
            const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
            const held = yield* hold(world.scopes, usd(1))
            const now = yield* Clock.currentTimeMillis
            expect(DateTime.toEpochMillis(held.expiresAt)).toBe(now + 15 * 60_000)

            yield* TestClock.adjust(15 * 60_000 - 1)
            expect(yield* ledger.reclaimExpired()).toBe(0)
            expect((yield* spendOf(world.team)).held).toBe(usd(1))
            yield* failure(hold(world.scopes, usd(0.5)), "BudgetExceeded")

            yield* TestClock.adjust(1)
            expect(yield* ledger.reclaimExpired()).toBe(1)
            expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
            expect(yield* ledger.reclaimExpired()).toBe(0)

            // Releasing an expired hold is a no-op.
            yield* ledger.release(held)
            expect((yield* spendOf(world.team)).total).toBe(0n)
          })
        )
    )

    it.effect("expired holds are reclaimed lazily by the next hold", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          yield* hold(world.scopes, usd(1))
          yield* TestClock.adjust("15 minutes")
          const next = yield* hold(world.scopes, usd(1))
          expect(next.amount).toBe(usd(1))
          expect((yield* spendOf(world.team)).held).toBe(usd(1))
        })
      )
    )

    it.effect("a settle after the hold expired still charges, once", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
          const held = yield* hold(world.scopes, usd(2))
          yield* TestClock.adjust("16 minutes")
          const settlement = yield* settle(world, held, usd(1.5))
          expect(settlement.late).toBe(true)
          for (const scope of world.scopes) {
            const spend = yield* spendOf(scope)
            expect(spend.total).toBe(usd(1.5))
            expect(spend.held).toBe(0n)
          }
          expect((yield* failure(settle(world, held, usd(1.5)), "HoldClosed")).state).toBe("settled")
          expect((yield* spendOf(world.team)).total).toBe(usd(1.5))
          expect((yield* Effect.flatMap(SpendLogRepo, (logs) => logs.query({}))).length).toBe(1)
        })
      )
    )

    it.effect("spend is recorded on an end user without a row; a cap set later sees it", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld()
          const customer: Scope.ScopeRef = { kind: "end_user", id: endUserId("customer-1") }
          const scopes = [...world.scopes.slice(0, 5), customer, world.global]
          yield* settle(world, yield* hold(scopes, usd(3)), usd(3))
          expect((yield* spendOf(customer)).total).toBe(usd(3))

          yield* Effect.flatMap(EndUserRepo, (endUsers) =>
            endUsers.insert({
              endUserId: endUserId("customer-1"),
              limits: limits({ maxBudget: 3 }),
              blocked: false
            })
          )
          const row = yield* some(yield* Effect.flatMap(EndUserRepo, (e) => e.find(endUserId("customer-1"))))
          expect(row.spend.total).toBe(usd(3))
          const refused = yield* failure(hold(scopes, usd(0.01)), "BudgetExceeded")
          expect(refused.scope).toBe("end_user")
          expect(refused.id).toBe("customer-1")
          expect(refused.spend).toBe(usd(3))
        })
      )
    )

    it.effect("a cap set later sees spend recorded before it, on every entity", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld()
          yield* settle(world, yield* hold(world.scopes, usd(2)), usd(2))
          yield* Effect.flatMap(BudgetRepo, (budgets) =>
            budgets.upsert(budgetId("global"), { maxBudget: Option.some(usd(2)) })
          )
          expect((yield* failure(hold(world.scopes, usd(0.01)), "BudgetExceeded")).scope).toBe("global")
          yield* Effect.flatMap(BudgetRepo, (budgets) => budgets.delete(budgetId("global")))
          yield* hold(world.scopes, usd(0.01))
        })
      )
    )

    it.effect("spendOf reports total, current and held; an unknown scope has spent nothing", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(0.25))
          yield* hold(world.scopes, usd(2))
          const team = yield* spendOf(world.team)
          expect(team.total).toBe(usd(0.25))
          expect(team.current).toBe(usd(0.25))
          expect(team.held).toBe(usd(2))
          const nobody = yield* spendOf({ kind: "end_user", id: endUserId("nobody") })
          expect([nobody.total, nobody.current, nobody.held]).toEqual([0n, 0n, 0n])
        })
      )
    )
  })

  describe("SpendLogRepo", () => {
    it.effect("filters by key, user, team and [start, end), newest first, with a limit", () =>
      run(
        Effect.gen(function* () {
          const ledger = yield* SpendLedger
          const world = yield* makeWorld()
          const base = Date.UTC(2025, 2, 1)
          const write = (minutes: number, overrides: Partial<ReturnType<typeof logDraft>>) =>
            Effect.gen(function* () {
              const held = yield* ledger.hold(holdRequest(world.scopes, usd(0.01)))
              yield* ledger.settle(held, usd(0.01), {
                ...logDraft(world, held, DateTime.unsafeMake(base + minutes * 60_000)),
                ...overrides
              })
              return held.holdId
            })
          const a = yield* write(0, {})
          const b = yield* write(10, { userId: Option.none(), teamId: Option.none() })
          const c = yield* write(5, { model: "other" })
          const logs = yield* SpendLogRepo

          const all = yield* logs.query({})
          expect(all.map((row) => row.requestId)).toEqual([b, c, a])
          expect((yield* logs.query({ limit: 2 })).map((row) => row.requestId)).toEqual([b, c])
          expect((yield* logs.query({ keyId: world.keyId })).length).toBe(3)
          expect(yield* logs.query({ keyId: keyId("some-other-key") })).toEqual([])
          expect((yield* logs.query({ userId: userId("alice") })).map((r) => r.requestId)).toEqual([c, a])
          expect((yield* logs.query({ teamId: teamId("eng") })).map((r) => r.requestId)).toEqual([c, a])
          expect(yield* logs.query({ teamId: teamId("ops") })).toEqual([])
          const window = yield* logs.query({
            startDate: DateTime.unsafeMake(base + 5 * 60_000),
            endDate: DateTime.unsafeMake(base + 10 * 60_000)
          })
          expect(window.map((row) => row.requestId)).toEqual([c])
        })
      )
    )
  })
}
