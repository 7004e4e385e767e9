/**
 * Conformance: create, read, update (absent / none / some), delete of every repository.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Option, Schema } from "effect"
import {
  BudgetRepo,
  EndUserRepo,
  Ids,
  KeyRepo,
  MembershipRepo,
  OrganizationRepo,
  StoreTransaction,
  TeamRepo,
  Token,
  UserRepo
} from "../../src/index.js"
import {
  addMember,
  limits,
  makeKey,
  makeOrganization,
  makeTeam,
  makeUser,
  orgId,
  teamId,
  usd,
  userId
} from "../support/fixtures.js"
import { budgetId, endUserId, failure, fullLimits, type Run, some } from "./fixtures.js"

export const repoTests = (run: Run): void => {
  describe("TeamRepo", () => {
    it.effect("inserts, finds and lists; a second insert of the id is AlreadyExists", () =>
      run(
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          yield* makeOrganization("acme")
          const created = yield* makeTeam("eng", fullLimits(100), {
            organizationId: "acme",
            models: ["gpt-4o"]
          })
          expect(created.teamId).toBe("eng")
          expect(created.spend.total).toBe(0n)
          yield* makeTeam("ops")
          const found = yield* some(yield* teams.find(teamId("eng")))
          expect(found.teamAlias).toBe("eng")
          expect(found.organizationId).toEqual(Option.some(orgId("acme")))
          expect(found.limits).toEqual(fullLimits(100))
          expect(found.models).toEqual(["gpt-4o"])
          expect(found.blocked).toBe(false)
          expect(Option.isNone(yield* teams.find(teamId("nope")))).toBe(true)
          expect((yield* teams.list()).map((team) => team.teamId).sort()).toEqual(["eng", "ops"])
          const duplicate = yield* failure(makeTeam("eng"), "AlreadyExists")
          expect(duplicate.entity).toBe("team")
        })
      )
    )

    it.effect("update: absent fields stay, none clears, some sets", () =>
      run(
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          yield* makeOrganization("acme")
          yield* makeTeam("eng", fullLimits(100), { organizationId: "acme", models: ["gpt-4o"] })
          const unchanged = yield* teams.update(teamId("eng"), {})
          expect(unchanged.limits).toEqual(fullLimits(100))
          expect(unchanged.organizationId).toEqual(Option.some(orgId("acme")))

          yield* teams.update(teamId("eng"), {
            teamAlias: "engineering",
            organizationId: Option.none(),
            limits: { maxBudget: Option.none(), rpmLimit: Option.some(99) },
            models: [],
            blocked: true,
            metadata: { cost_center: 7 }
          })
          const found = yield* some(yield* teams.find(teamId("eng")))
          expect(found.teamAlias).toBe("engineering")
          expect(Option.isNone(found.organizationId)).toBe(true)
          expect(Option.isNone(found.limits.maxBudget)).toBe(true)
          expect(found.limits.rpmLimit).toEqual(Option.some(99))
          expect(found.limits.tpmLimit).toEqual(Option.some(1000))
          expect(found.limits.softBudget).toEqual(fullLimits(100).softBudget)
          expect(found.limits.budgetDuration).toEqual(Option.some({ count: 7, unit: "d" }))
          expect(found.models).toEqual([])
          expect(found.blocked).toBe(true)
          expect(found.metadata).toEqual({ cost_center: 7 })

          yield* teams.update(teamId("eng"), { limits: { maxBudget: Option.some(usd(5)) } })
          const capped = yield* some(yield* teams.find(teamId("eng")))
          expect(capped.limits.maxBudget).toEqual(Option.some(usd(5)))
          expect(capped.teamAlias).toBe("engineering")

          const missing = yield* failure(teams.update(teamId("nope"), { blocked: true }), "NotFound")
          expect(missing.entity).toBe("team")
        })
      )
    )

    it.effect("delete cascades memberships and keys of the team, and nothing else", () =>
      run(
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          const keys = yield* KeyRepo
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeTeam("ops")
          yield* makeUser("alice")
          yield* makeUser("bob")
          yield* addMember("eng", "alice", Option.some(limits({ maxBudget: 5 })))
          yield* addMember("eng", "bob")
          yield* addMember("ops", "alice")
          const engKey = Token.hashToken(yield* makeKey({ team: "eng", user: "alice" }))
          const opsKey = Token.hashToken(yield* makeKey({ team: "ops", user: "alice" }))
          const ownKey = Token.hashToken(yield* makeKey({ user: "alice" }))

          yield* teams.delete([teamId("eng")])
          expect(Option.isNone(yield* teams.find(teamId("eng")))).toBe(true)
          expect(yield* memberships.listByTeam(teamId("eng"))).toEqual([])
          expect(Option.isNone(yield* memberships.find(teamId("eng"), userId("alice")))).toBe(true)
          expect(Option.isNone(yield* keys.find(engKey))).toBe(true)
          expect(Option.isSome(yield* keys.find(opsKey))).toBe(true)
          expect(Option.isSome(yield* keys.find(ownKey))).toBe(true)
          expect((yield* memberships.listByUser(userId("alice"))).map((m) => m.teamId)).toEqual(["ops"])
          expect(Option.isSome(yield* Effect.flatMap(UserRepo, (users) => users.find(userId("bob"))))).toBe(
            true
          )
          expect((yield* keys.listByTeam(teamId("eng"))).length).toBe(0)

          // A team re-created under the same id starts empty.
          yield* makeTeam("eng")
          expect(yield* memberships.listByTeam(teamId("eng"))).toEqual([])
        })
      )
    )

    it.effect("delete is all or none: one missing id deletes nothing", () =>
      run(
        Effect.gen(function* () {
          const teams = yield* TeamRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* addMember("eng", "alice")
          const missing = yield* failure(teams.delete([teamId("eng"), teamId("nope")]), "NotFound")
          expect(missing.id).toBe("nope")
          expect(Option.isSome(yield* teams.find(teamId("eng")))).toBe(true)
          expect((yield* Effect.flatMap(MembershipRepo, (m) => m.listByTeam(teamId("eng")))).length).toBe(1)
        })
      )
    )
  })

  describe("UserRepo", () => {
    it.effect("insert, find, AlreadyExists, update patches, NotFound", () =>
      run(
        Effect.gen(function* () {
          const users = yield* UserRepo
          const created = yield* users.insert({
            userId: userId("alice"),
            userEmail: Option.some("alice@example.com"),
            userRole: "internal_user",
            limits: fullLimits(10),
            models: ["gpt-4o"],
            blocked: false,
            metadata: { team: "eng" }
          })
          expect(created.userEmail).toEqual(Option.some("alice@example.com"))
          expect(Option.isNone(yield* users.find(userId("bob")))).toBe(true)
          expect((yield* failure(makeUser("alice"), "AlreadyExists")).entity).toBe("user")

          yield* users.update(userId("alice"), {})
          expect((yield* some(yield* users.find(userId("alice")))).limits).toEqual(fullLimits(10))

          yield* users.update(userId("alice"), {
            userEmail: Option.none(),
            userRole: "proxy_admin",
            limits: { budgetDuration: Option.none(), tpmLimit: Option.some(5) },
            models: [],
            blocked: true,
            metadata: {}
          })
          const found = yield* some(yield* users.find(userId("alice")))
          expect(Option.isNone(found.userEmail)).toBe(true)
          expect(found.userRole).toBe("proxy_admin")
          expect(Option.isNone(found.limits.budgetDuration)).toBe(true)
          expect(found.limits.tpmLimit).toEqual(Option.some(5))
          expect(found.limits.maxBudget).toEqual(fullLimits(10).maxBudget)
          expect(found.models).toEqual([])
          expect(found.blocked).toBe(true)
          expect(found.metadata).toEqual({})

          yield* users.update(userId("alice"), { userEmail: Option.some("a@example.org") })
          expect((yield* some(yield* users.find(userId("alice")))).userEmail).toEqual(
            Option.some("a@example.org")
          )
          expect((yield* failure(users.update(userId("bob"), {}), "NotFound")).entity).toBe("user")
        })
      )
    )
  })

  describe("OrganizationRepo", () => {
    it.effect("insert, find, AlreadyExists, update patches, NotFound", () =>
      run(
        Effect.gen(function* () {
          const organizations = yield* OrganizationRepo
          yield* makeOrganization("acme", fullLimits(50), ["gpt-4o"])
          expect((yield* failure(makeOrganization("acme"), "AlreadyExists")).entity).toBe("organization")
          expect(Option.isNone(yield* organizations.find(orgId("other")))).toBe(true)

          yield* organizations.update(orgId("acme"), {})
          expect((yield* some(yield* organizations.find(orgId("acme")))).limits).toEqual(fullLimits(50))

          yield* organizations.update(orgId("acme"), {
            organizationAlias: "Acme Inc.",
            limits: { maxBudget: Option.some(usd(60)), softBudget: Option.none() },
            models: [],
            blocked: true
          })
          const found = yield* some(yield* organizations.find(orgId("acme")))
          expect(found.organizationAlias).toBe("Acme Inc.")
          expect(found.limits.maxBudget).toEqual(Option.some(usd(60)))
          expect(Option.isNone(found.limits.softBudget)).toBe(true)
          expect(found.limits.rpmLimit).toEqual(Option.some(10))
          expect(found.models).toEqual([])
          expect(found.blocked).toBe(true)
          expect((yield* failure(organizations.update(orgId("other"), {}), "NotFound")).entity).toBe(
            "organization"
          )
        })
      )
    )
  })

  describe("EndUserRepo", () => {
    it.effect("insert, find, AlreadyExists, update patches, NotFound", () =>
      run(
        Effect.gen(function* () {
          const endUsers = yield* EndUserRepo
          const draft = { endUserId: endUserId("customer-1"), limits: fullLimits(3), blocked: false }
          yield* endUsers.insert(draft)
          expect((yield* failure(endUsers.insert(draft), "AlreadyExists")).entity).toBe("end_user")
          expect(Option.isNone(yield* endUsers.find(endUserId("customer-2")))).toBe(true)

          yield* endUsers.update(endUserId("customer-1"), {})
          expect((yield* some(yield* endUsers.find(endUserId("customer-1")))).limits).toEqual(fullLimits(3))

          yield* endUsers.update(endUserId("customer-1"), {
            limits: { maxBudget: Option.none(), maxParallelRequests: Option.some(1) },
            blocked: true
          })
          const found = yield* some(yield* endUsers.find(endUserId("customer-1")))
          expect(Option.isNone(found.limits.maxBudget)).toBe(true)
          expect(found.limits.maxParallelRequests).toEqual(Option.some(1))
          expect(found.limits.tpmLimit).toEqual(Option.some(1000))
          expect(found.blocked).toBe(true)
          expect((yield* failure(endUsers.update(endUserId("customer-2"), {}), "NotFound")).entity).toBe(
            "end_user"
          )
        })
      )
    )
  })

  describe("KeyRepo", () => {
    it.effect("insert, find by hash and id, list by team and user, AlreadyExists", () =>
      run(
        Effect.gen(function* () {
          const keys = yield* KeyRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          const token = yield* makeKey({ team: "eng", user: "alice", alias: "ci", models: ["gpt-4o"] })
          yield* makeKey({ user: "alice" })
          const hash = Token.hashToken(token)
          const key = yield* some(yield* keys.find(hash))
          expect(key.keyAlias).toEqual(Option.some("ci"))
          expect(key.displayPrefix).toBe(Token.displayPrefix(token))
          expect(key.teamId).toEqual(Option.some(teamId("eng")))
          expect(key.models).toEqual(["gpt-4o"])
          expect(key.spend.total).toBe(0n)
          expect((yield* some(yield* keys.findById(key.keyId))).hash).toBe(hash)
          expect(Option.isNone(yield* keys.find(Token.hashToken("sk-unknown")))).toBe(true)
          expect(Option.isNone(yield* keys.findById(Schema.decodeSync(Ids.KeyId)("nope")))).toBe(true)
          expect((yield* keys.listByTeam(teamId("eng"))).map((k) => k.hash)).toEqual([hash])
          expect((yield* keys.listByUser(userId("alice"))).length).toBe(2)

          const again = yield* failure(
            keys.insert({ ...key, keyId: Schema.decodeSync(Ids.KeyId)("other") }),
            "AlreadyExists"
          )
          expect(again.entity).toBe("key")
          expect(again.message).not.toContain(hash)
          const sameId = yield* failure(
            keys.insert({ ...key, hash: Token.hashToken("sk-other") }),
            "AlreadyExists"
          )
          expect(sameId.entity).toBe("key")
        })
      )
    )

    it.effect("listExpiring: keys expiring in (after, until], soonest first", () =>
      run(
        Effect.gen(function* () {
          const keys = yield* KeyRepo
          const hour = 3_600_000
          yield* makeKey({ alias: "later", expiresInMillis: 3 * hour })
          yield* makeKey({ alias: "soon", expiresInMillis: hour })
          yield* makeKey({ alias: "edge", expiresInMillis: 2 * hour })
          yield* makeKey({ alias: "past", expiresInMillis: -hour })
          yield* makeKey({ alias: "never" })
          const now = yield* DateTime.now
          const expiring = yield* keys.listExpiring(now, DateTime.add(now, { hours: 2 }))
          expect(expiring.map((key) => Option.getOrNull(key.keyAlias))).toEqual(["soon", "edge"])
          expect(
            yield* keys.listExpiring(DateTime.add(now, { hours: 3 }), DateTime.add(now, { days: 9 }))
          ).toEqual([])
        })
      )
    )

    it.effect("update: absent fields stay, none clears, some sets; NotFound never shows the hash", () =>
      run(
        Effect.gen(function* () {
          const keys = yield* KeyRepo
          yield* makeTeam("eng")
          yield* makeTeam("ops")
          yield* makeUser("alice")
          const hash = Token.hashToken(
            yield* makeKey({ team: "eng", user: "alice", alias: "ci", limits: fullLimits(20), models: ["a"] })
          )
          yield* keys.update(hash, {})
          const before = yield* some(yield* keys.find(hash))
          expect(before.limits).toEqual(fullLimits(20))
          expect(before.keyAlias).toEqual(Option.some("ci"))

          const expires = DateTime.unsafeMake(Date.UTC(2030, 0, 1))
          yield* keys.update(hash, {
            keyAlias: Option.none(),
            userId: Option.none(),
            teamId: Option.some(teamId("ops")),
            limits: { rpmLimit: Option.none(), maxBudget: Option.some(usd(1.25)) },
            models: [],
            expires: Option.some(expires),
            blocked: true,
            metadata: { note: "rotated" }
          })
          const after = yield* some(yield* keys.find(hash))
          expect(Option.isNone(after.keyAlias)).toBe(true)
          expect(Option.isNone(after.userId)).toBe(true)
          expect(after.teamId).toEqual(Option.some(teamId("ops")))
          expect(Option.isNone(after.limits.rpmLimit)).toBe(true)
          expect(after.limits.maxBudget).toEqual(Option.some(usd(1.25)))
          expect(after.limits.tpmLimit).toEqual(Option.some(1000))
          expect(after.models).toEqual([])
          expect(Option.map(after.expires, DateTime.toEpochMillis)).toEqual(Option.some(Date.UTC(2030, 0, 1)))
          expect(after.blocked).toBe(true)
          expect(after.metadata).toEqual({ note: "rotated" })
          expect((yield* keys.listByTeam(teamId("ops"))).length).toBe(1)

          yield* keys.update(hash, { expires: Option.none() })
          expect(Option.isNone((yield* some(yield* keys.find(hash))).expires)).toBe(true)

          const unknown = Token.hashToken("sk-unknown")
          const missing = yield* failure(keys.update(unknown, { blocked: true }), "NotFound")
          expect(missing.entity).toBe("key")
          expect(missing.message).not.toContain(unknown)
        })
      )
    )

    it.effect("delete is all or none", () =>
      run(
        Effect.gen(function* () {
          const keys = yield* KeyRepo
          const first = Token.hashToken(yield* makeKey())
          const second = Token.hashToken(yield* makeKey())
          const unknown = Token.hashToken("sk-unknown")
          const missing = yield* failure(keys.delete([first, unknown]), "NotFound")
          expect(missing.message).not.toContain(unknown)
          expect(Option.isSome(yield* keys.find(first))).toBe(true)
          yield* keys.delete([first, second])
          expect(Option.isNone(yield* keys.find(first))).toBe(true)
          expect(Option.isNone(yield* keys.find(second))).toBe(true)
        })
      )
    )
  })

  describe("BudgetRepo", () => {
    it.effect("upsert creates then patches; delete; NotFound", () =>
      run(
        Effect.gen(function* () {
          const budgets = yield* BudgetRepo
          const id = budgetId("shared")
          expect(Option.isNone(yield* budgets.find(id))).toBe(true)
          const created = yield* budgets.upsert(id, {
            maxBudget: Option.some(usd(10)),
            tpmLimit: Option.some(5)
          })
          expect(created.limits.maxBudget).toEqual(Option.some(usd(10)))
          expect(Option.isNone(created.limits.rpmLimit)).toBe(true)

          yield* budgets.upsert(id, {})
          yield* budgets.upsert(id, { maxBudget: Option.none(), rpmLimit: Option.some(3) })
          const found = yield* some(yield* budgets.find(id))
          expect(Option.isNone(found.limits.maxBudget)).toBe(true)
          expect(found.limits.tpmLimit).toEqual(Option.some(5))
          expect(found.limits.rpmLimit).toEqual(Option.some(3))

          yield* budgets.delete(id)
          expect(Option.isNone(yield* budgets.find(id))).toBe(true)
          expect((yield* failure(budgets.delete(id), "NotFound")).entity).toBe("budget")
        })
      )
    )

    it.effect("deleting a member's budget leaves the member without a cap, readable", () =>
      run(
        Effect.gen(function* () {
          const memberships = yield* MembershipRepo
          yield* makeTeam("eng")
          yield* makeUser("alice")
          yield* addMember("eng", "alice", Option.some(limits({ maxBudget: 5 })))
          const member = yield* some(yield* memberships.find(teamId("eng"), userId("alice")))
          const budget = yield* some(member.budget)
          yield* Effect.flatMap(BudgetRepo, (budgets) => budgets.delete(budget.budgetId))
          const after = yield* some(yield* memberships.find(teamId("eng"), userId("alice")))
          expect(Option.isNone(after.budget)).toBe(true)
          expect((yield* memberships.listByTeam(teamId("eng"))).length).toBe(1)
        })
      )
    )
  })

  describe("StoreTransaction", () => {
    it.effect("runs a unit of several writes and returns its result", () =>
      run(
        Effect.gen(function* () {
          const transaction = yield* StoreTransaction
          const result = yield* transaction.run(
            Effect.gen(function* () {
              yield* makeTeam("eng")
              yield* makeUser("alice")
              yield* addMember("eng", "alice")
              return "done"
            })
          )
          expect(result).toBe("done")
          expect((yield* Effect.flatMap(MembershipRepo, (m) => m.listByTeam(teamId("eng")))).length).toBe(1)
        })
      )
    )
  })
}
