/**
 * Conformance: budget windows driven by the TestClock (SPEC 6). Each test first sets
 * the clock to a fixed date; entities made then are anchored there.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Option, TestClock } from "effect"
import { KeyRepo, MembershipRepo, TeamRepo } from "../../src/index.js"
import { duration, limits, teamId, usd, userId } from "../support/fixtures.js"
import { failure, hold, makeWorld, type Run, settle, some, spendOf } from "./fixtures.js"

const HOUR = 3_600_000
const DAY = 24 * HOUR

const resetAtMillis = (resetAt: Option.Option<DateTime.Utc>) => Option.map(resetAt, DateTime.toEpochMillis)

export const windowTests = (run: Run): void => {
  describe("budget windows", () => {
    it.effect("spend resets exactly at the window end, once, and skipped windows reset once", () =>
      run(
        Effect.gen(function* () {
          const t0 = Date.UTC(2025, 0, 1)
          yield* TestClock.setTime(t0)
          const world = yield* makeWorld({ team: limits({ maxBudget: 10, budgetDuration: "1h" }) })
          yield* settle(world, yield* hold(world.scopes, usd(3)), usd(3))
          yield* settle(world, yield* hold(world.scopes, usd(7)), usd(7))
          const refused = yield* failure(hold(world.scopes, usd(0.01)), "BudgetExceeded")
          expect(resetAtMillis(refused.resetAt)).toEqual(Option.some(t0 + HOUR))

          yield* TestClock.setTime(t0 + HOUR - 1)
          const before = yield* spendOf(world.team)
          expect(before.current).toBe(usd(10))
          expect(resetAtMillis(before.resetAt)).toEqual(Option.some(t0 + HOUR))
          yield* failure(hold(world.scopes, usd(0.01)), "BudgetExceeded")

          yield* TestClock.setTime(t0 + HOUR)
          const after = yield* spendOf(world.team)
          expect(after.current).toBe(0n)
          expect(after.total).toBe(usd(10))
          expect(resetAtMillis(after.resetAt)).toEqual(Option.some(t0 + 2 * HOUR))
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))

          // Never twice in one window.
          yield* TestClock.setTime(t0 + 2 * HOUR - 1)
          expect((yield* spendOf(world.team)).current).toBe(usd(1))
          const team = yield* some(yield* Effect.flatMap(TeamRepo, (teams) => teams.find(teamId("eng"))))
          expect(team.spend.current).toBe(usd(1))
          expect(team.spend.total).toBe(usd(11))

          // Three and a half windows later: one reset, boundaries still on the anchor's grid.
          yield* TestClock.setTime(t0 + 5 * HOUR + 30 * 60_000)
          const later = yield* spendOf(world.team)
          expect(later.current).toBe(0n)
          expect(later.total).toBe(usd(11))
          expect(resetAtMillis(later.resetAt)).toEqual(Option.some(t0 + 6 * HOUR))
          // Scopes without a duration count their lifetime total.
          const user = yield* spendOf(world.user)
          expect(user.current).toBe(usd(11))
          expect(Option.isNone(user.resetAt)).toBe(true)
        })
      )
    )

    for (const [year, february] of [
      [2025, 28],
      [2024, 29]
    ] as const) {
      it.effect(`calendar months: anchored Jan 31 ${year}, resets Feb ${february} and Mar 31`, () =>
        run(
          Effect.gen(function* () {
            yield* TestClock.setTime(Date.UTC(year, 0, 31))
            const world = yield* makeWorld({ team: limits({ maxBudget: 10, budgetDuration: "1mo" }) })
            yield* settle(world, yield* hold(world.scopes, usd(2)), usd(2))
            const feb = Date.UTC(year, 1, february)
            const mar = Date.UTC(year, 2, 31)

            yield* TestClock.setTime(feb - 1)
            const january = yield* spendOf(world.team)
            expect(january.current).toBe(usd(2))
            expect(resetAtMillis(january.resetAt)).toEqual(Option.some(feb))

            yield* TestClock.setTime(feb)
            const february_ = yield* spendOf(world.team)
            expect(february_.current).toBe(0n)
            expect(resetAtMillis(february_.resetAt)).toEqual(Option.some(mar))
            yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))

            yield* TestClock.setTime(mar - 1)
            expect((yield* spendOf(world.team)).current).toBe(usd(1))
            yield* TestClock.setTime(mar)
            const march = yield* spendOf(world.team)
            expect(march.current).toBe(0n)
            expect(march.total).toBe(usd(3))
            expect(resetAtMillis(march.resetAt)).toEqual(Option.some(Date.UTC(year, 3, 30)))
          })
        )
      )
    }

    it.effect(
      "a new duration starts a new window at 0 and keeps the lifetime total; a new cap alone keeps spend",
      () =>
        run(
          Effect.gen(function* () {
            const t0 = Date.UTC(2025, 3, 10)
            yield* TestClock.setTime(t0)
            const teams = yield* TeamRepo
            const world = yield* makeWorld({ team: limits({ maxBudget: 100, budgetDuration: "1d" }) })
            yield* settle(world, yield* hold(world.scopes, usd(5)), usd(5))
            yield* TestClock.setTime(t0 + HOUR)

            const changed = yield* teams.update(teamId("eng"), {
              limits: { budgetDuration: Option.some(duration("1h")) }
            })
            expect(changed.spend.current).toBe(0n)
            expect(changed.spend.total).toBe(usd(5))
            expect(resetAtMillis(changed.spend.resetAt)).toEqual(Option.some(t0 + 2 * HOUR))

            yield* settle(world, yield* hold(world.scopes, usd(2)), usd(2))
            const capped = yield* teams.update(teamId("eng"), { limits: { maxBudget: Option.some(usd(50)) } })
            expect(capped.spend.current).toBe(usd(2))
            const same = yield* teams.update(teamId("eng"), {
              limits: { budgetDuration: Option.some(duration("1h")) }
            })
            expect(same.spend.current).toBe(usd(2))
            expect(resetAtMillis(same.spend.resetAt)).toEqual(Option.some(t0 + 2 * HOUR))

            const cleared = yield* teams.update(teamId("eng"), { limits: { budgetDuration: Option.none() } })
            expect(cleared.spend.current).toBe(usd(7))
            expect(Option.isNone(cleared.spend.resetAt)).toBe(true)
          })
        )
    )

    it.effect("member budgets and keys have windows too", () =>
      run(
        Effect.gen(function* () {
          const t0 = Date.UTC(2025, 6, 1)
          yield* TestClock.setTime(t0)
          const world = yield* makeWorld({
            member: limits({ maxBudget: 1, budgetDuration: "1d" }),
            key: limits({ maxBudget: 5 })
          })
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))
          expect((yield* failure(hold(world.scopes, usd(0.5)), "BudgetExceeded")).scope).toBe("membership")
          yield* TestClock.setTime(t0 + DAY)
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))
          const member = yield* some(
            yield* Effect.flatMap(MembershipRepo, (m) => m.find(teamId("eng"), userId("alice")))
          )
          expect(member.spend.current).toBe(usd(1))
          expect(member.spend.total).toBe(usd(2))

          // The key gets a duration later: its first window starts then, with nothing spent in it.
          yield* TestClock.setTime(t0 + DAY + HOUR)
          const key = yield* Effect.flatMap(KeyRepo, (keys) =>
            keys.update(world.keyHash, { limits: { budgetDuration: Option.some(duration("30m")) } })
          )
          expect(key.spend.current).toBe(0n)
          expect(key.spend.total).toBe(usd(2))
          expect(resetAtMillis(key.spend.resetAt)).toEqual(Option.some(t0 + DAY + HOUR + 30 * 60_000))
        })
      )
    )
  })
}
