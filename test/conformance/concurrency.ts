/**
 * Conformance: concurrent holds never overspend, and money stays exact through the
 * ledger (SPEC 5, 7).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { MembershipRepo, Money, type Scope, SpendLogRepo } from "../../src/index.js"
import { limits, makeUser, teamId, usd, userId } from "../support/fixtures.js"
import { heldOn, hold, makeWorld, nanos, type Run, settle, spendOf } from "./fixtures.js"

const sumCosts = Effect.map(
  Effect.flatMap(SpendLogRepo, (logs) => logs.query({ limit: 100_000 })),
  (rows) => rows.reduce((sum, row) => Money.add(sum, row.cost), Money.zero)
)

export const concurrencyTests = (run: Run): void => {
  describe("concurrency and exactness", () => {
    it.effect("500 concurrent strict hold+settle against one team budget admit exactly what fits", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 10 }) })
          const attempt = Effect.gen(function* () {
            const held = yield* hold(world.scopes, usd(0.3))
            yield* Effect.yieldNow()
            yield* settle(world, held, usd(0.3))
            return true
          }).pipe(Effect.catchTag("BudgetExceeded", () => Effect.succeed(false)))
          const results = yield* Effect.all(
            Array.from({ length: 500 }, () => attempt),
            { concurrency: "unbounded" }
          )
          // $10 / $0.30 = 33 requests ($9.90); the 34th would overspend.
          expect(results.filter(Boolean).length).toBe(33)
          const team = yield* spendOf(world.team)
          expect(team.total).toBe(usd(9.9))
          expect(team.total <= usd(10)).toBe(true)
          expect(yield* heldOn(world.scopes)).toEqual(world.scopes.map(() => 0n))
          expect(yield* sumCosts).toBe(team.total)
          expect((yield* spendOf(world.key)).total).toBe(usd(9.9))
        })
      )
    )

    it.effect("concurrent members: each member cap and the team pool hold at once", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 3 }) })
          const members = ["m1", "m2", "m3", "m4", "m5"]
          for (const member of members) {
            yield* makeUser(member)
            yield* Effect.flatMap(MembershipRepo, (m) =>
              m.add(teamId("eng"), [
                { userId: userId(member), role: "user", limits: Option.some(limits({ maxBudget: 1 })) }
              ])
            )
          }
          const scopesOf = (member: string): ReadonlyArray<Scope.ScopeRef> => [
            { kind: "membership", teamId: teamId("eng"), userId: userId(member) },
            world.team
          ]
          const attempt = (member: string) =>
            Effect.gen(function* () {
              const held = yield* hold(scopesOf(member), usd(0.1))
              yield* Effect.yieldNow()
              yield* settle(world, held, usd(0.1))
              return member
            }).pipe(Effect.catchTag("BudgetExceeded", () => Effect.succeed(undefined)))
          const admitted = yield* Effect.all(
            Array.from({ length: 500 }, (_, i) => attempt(members[i % members.length] ?? "m1")),
            { concurrency: "unbounded" }
          )
          expect(admitted.filter((m) => m !== undefined).length).toBe(30)
          expect((yield* spendOf(world.team)).total).toBe(usd(3))
          for (const member of members) {
            const spend = yield* spendOf({
              kind: "membership",
              teamId: teamId("eng"),
              userId: userId(member)
            })
            expect(spend.total <= usd(1)).toBe(true)
            expect(spend.held).toBe(0n)
            expect(spend.total).toBe(usd(0.1) * BigInt(admitted.filter((m) => m === member).length))
          }
        })
      )
    )

    it.effect("10,000 settles of $0.0000001 are exactly $0.001", () =>
      run(
        Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
          const tiny = usd(0.0000001)
          expect(tiny).toBe(nanos(100n))
          yield* Effect.forEach(
            Array.from({ length: 10_000 }),
            () => Effect.flatMap(hold(world.scopes, tiny), (held) => settle(world, held, tiny)),
            { concurrency: 16, discard: true }
          )
          for (const scope of world.scopes) expect((yield* spendOf(scope)).total).toBe(usd(0.001))
          expect(Money.toUsd((yield* spendOf(world.team)).total)).toBe(0.001)
          expect(yield* sumCosts).toBe(usd(0.001))
        })
      )
    )
  })
}
