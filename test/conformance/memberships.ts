/**
 * Conformance: team memberships and the member's own budget (`Option<Budget>`, SPEC 1).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { MembershipRepo } from "../../src/index.js"
import { addMember, limits, makeTeam, makeUser, teamId, usd, userId } from "../support/fixtures.js"
import { failure, type Run, some } from "./fixtures.js"

export const membershipTests = (run: Run): void => {
  describe("MembershipRepo", () => {
    it.effect("a member without limits reads budget none; with limits, a budget of their own", () =>
      run(
        Effect.gen(function* () {
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* makeUser("bob")
          const added = yield* memberships.add(teamId("eng"), [
            { userId: userId("alice"), role: "admin", limits: Option.none() },
            {
              userId: userId("bob"),
              role: "user",
              limits: Option.some(limits({ maxBudget: 5, tpmLimit: 100 }))
            }
          ])
          expect(added.map((m) => m.userId)).toEqual(["alice", "bob"])

          const alice = yield* some(yield* memberships.find(teamId("eng"), userId("alice")))
          expect(alice.role).toBe("admin")
          expect(alice.budget).toEqual(Option.none())
          expect(alice.spend.total).toBe(0n)

          const bob = yield* some(yield* memberships.find(teamId("eng"), userId("bob")))
          const budget = yield* some(bob.budget)
          expect(budget.limits.maxBudget).toEqual(Option.some(usd(5)))
          expect(budget.limits.tpmLimit).toEqual(Option.some(100))

          expect((yield* memberships.listByTeam(teamId("eng"))).map((m) => m.userId).sort()).toEqual([
            "alice",
            "bob"
          ])
          expect((yield* memberships.listByUser(userId("bob"))).map((m) => m.teamId)).toEqual(["eng"])
          expect(Option.isNone(yield* memberships.find(teamId("eng"), userId("carol")))).toBe(true)
        })
      )
    )

    it.effect("add is all or none: missing team, missing user, existing member", () =>
      run(
        Effect.gen(function* () {
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* makeUser("bob")
          const noTeam = yield* failure(addMember("nope", "alice"), "NotFound")
          expect(noTeam.entity).toBe("team")

          const noUser = yield* failure(
            memberships.add(teamId("eng"), [
              { userId: userId("bob"), role: "user", limits: Option.none() },
              { userId: userId("ghost"), role: "user", limits: Option.none() }
            ]),
            "NotFound"
          )
          expect(noUser.entity).toBe("user")
          expect(noUser.id).toBe("ghost")
          expect(yield* memberships.listByTeam(teamId("eng"))).toEqual([])

          yield* addMember("eng", "alice")
          const twice = yield* failure(
            memberships.add(teamId("eng"), [
              { userId: userId("bob"), role: "user", limits: Option.none() },
              { userId: userId("alice"), role: "user", limits: Option.none() }
            ]),
            "AlreadyExists"
          )
          expect(twice.entity).toBe("membership")
          expect(Option.isNone(yield* memberships.find(teamId("eng"), userId("bob")))).toBe(true)

          const sameTwice = yield* failure(
            memberships.add(teamId("eng"), [
              { userId: userId("bob"), role: "user", limits: Option.none() },
              { userId: userId("bob"), role: "admin", limits: Option.none() }
            ]),
            "AlreadyExists"
          )
          expect(sameTwice.entity).toBe("membership")
          expect(Option.isNone(yield* memberships.find(teamId("eng"), userId("bob")))).toBe(true)
        })
      )
    )

    it.effect("update: set limits on a member without a budget, then clear them: budget none again", () =>
      run(
        Effect.gen(function* () {
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* addMember("eng", "alice")

          const unchanged = yield* memberships.update(teamId("eng"), userId("alice"), {})
          expect(unchanged.budget).toEqual(Option.none())
          expect(unchanged.role).toBe("user")

          yield* memberships.update(teamId("eng"), userId("alice"), {
            role: "admin",
            limits: { maxBudget: Option.some(usd(7)) }
          })
          const capped = yield* some(yield* memberships.find(teamId("eng"), userId("alice")))
          expect(capped.role).toBe("admin")
          expect(Option.map(capped.budget, (b) => b.limits.maxBudget)).toEqual(
            Option.some(Option.some(usd(7)))
          )

          yield* memberships.update(teamId("eng"), userId("alice"), { limits: { tpmLimit: Option.some(50) } })
          const both = yield* some(
            (yield* some(yield* memberships.find(teamId("eng"), userId("alice")))).budget
          )
          expect(both.limits.maxBudget).toEqual(Option.some(usd(7)))
          expect(both.limits.tpmLimit).toEqual(Option.some(50))

          // Clearing one of two limits keeps the budget with the other.
          yield* memberships.update(teamId("eng"), userId("alice"), { limits: { maxBudget: Option.none() } })
          const tpmOnly = yield* some(
            (yield* some(yield* memberships.find(teamId("eng"), userId("alice")))).budget
          )
          expect(Option.isNone(tpmOnly.limits.maxBudget)).toBe(true)
          expect(tpmOnly.limits.tpmLimit).toEqual(Option.some(50))

          // Clearing the last one unlinks it: none, never an error on read.
          yield* memberships.update(teamId("eng"), userId("alice"), { limits: { tpmLimit: Option.none() } })
          const cleared = yield* some(yield* memberships.find(teamId("eng"), userId("alice")))
          expect(cleared.budget).toEqual(Option.none())
          expect(cleared.role).toBe("admin")
          expect(
            (yield* memberships.listByUser(userId("alice"))).map((m) => Option.isNone(m.budget))
          ).toEqual([true])

          // And a cap can be set again afterwards.
          yield* memberships.update(teamId("eng"), userId("alice"), {
            limits: { maxBudget: Option.some(usd(1)) }
          })
          const again = yield* some(
            (yield* some(yield* memberships.find(teamId("eng"), userId("alice")))).budget
          )
          expect(again.limits.maxBudget).toEqual(Option.some(usd(1)))

          const missing = yield* failure(memberships.update(teamId("eng"), userId("bob"), {}), "NotFound")
          expect(missing.entity).toBe("membership")
        })
      )
    )

    it.effect("remove, then NotFound", () =>
      run(
        Effect.gen(function* () {
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* addMember("eng", "alice", Option.some(limits({ maxBudget: 2 })))
          yield* memberships.remove(teamId("eng"), userId("alice"))
          expect(Option.isNone(yield* memberships.find(teamId("eng"), userId("alice")))).toBe(true)
          expect(
            (yield* failure(memberships.remove(teamId("eng"), userId("alice")), "NotFound")).entity
          ).toBe("membership")
          // Re-adding works and starts without the old budget.
          yield* addMember("eng", "alice")
          expect((yield* some(yield* memberships.find(teamId("eng"), userId("alice")))).budget).toEqual(
            Option.none()
          )
        })
      )
    )
  })
}
