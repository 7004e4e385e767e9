/**
 * Scenarios the SQL stores must pass on both dialects: many concurrent requests on
 * several store instances against one team budget, rows corrupted behind the
 * store's back, exact int8 money, and migrations run twice.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { expect } from "@effect/vitest"
import { type Context, Effect, Layer, Option, Schema } from "effect"
import {
  BudgetPolicy,
  Ids,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Limits,
  MembershipRepo,
  Money,
  OrganizationRepo,
  Pricing,
  type Scope,
  SpendLedger,
  SpendLogRepo,
  SqlStore,
  type StoreServices,
  TeamRepo,
  toHttpError,
  Token,
  UserRepo
} from "../../src/index.js"
import {
  endUserId,
  failure,
  hold,
  holdRequest,
  logDraft,
  makeWorld,
  type World
} from "../conformance/fixtures.js"
import { dumpTables, toText } from "./sqlDump.js"
import { addMember, limits, makeOrganization, makeTeam, makeUser, teamId, usd, userId } from "./fixtures.js"
import { testPricing } from "./runtime.js"
import { migrations } from "../../src/store/sql/Migrations.js"

/** A member of team "pool" with a key of their own. */
export interface Member {
  readonly name: string
  readonly token: string
  readonly world: World
}

const keyIdOf = Schema.decodeSync(Ids.KeyId)

/** Team "pool" (organization "acme") with `names` as members, each with a key on the team. */
export const makeTeamOf = (
  names: ReadonlyArray<string>,
  teamLimits: Limits.Limits,
  memberLimits: (name: string) => Option.Option<Limits.Limits> = () => Option.none()
) =>
  Effect.gen(function* () {
    yield* makeOrganization("acme")
    yield* makeTeam("pool", teamLimits, { organizationId: "acme" })
    const members: Array<Member> = []
    for (const name of names) {
      yield* makeUser(name)
      yield* addMember("pool", name, memberLimits(name))
      const token = Token.generateToken()
      const keyHash = Token.hashToken(token)
      const keyId = keyIdOf(`key-${name}`)
      yield* Effect.flatMap(KeyRepo, (keys) =>
        keys.insert({
          keyId,
          hash: keyHash,
          keyAlias: Option.some(`${name}-key`),
          displayPrefix: Token.displayPrefix(token),
          userId: Option.some(userId(name)),
          teamId: Option.some(teamId("pool")),
          limits: Limits.none,
          models: [],
          expires: Option.none(),
          blocked: false,
          metadata: {}
        })
      )
      const key: Scope.ScopeRef = { kind: "key", id: keyHash, label: `${name}-key` }
      const user: Scope.ScopeRef = { kind: "user", id: userId(name) }
      const membership: Scope.ScopeRef = { kind: "membership", teamId: teamId("pool"), userId: userId(name) }
      const team: Scope.ScopeRef = { kind: "team", id: teamId("pool") }
      const organization: Scope.ScopeRef = {
        kind: "organization",
        id: Schema.decodeSync(Ids.OrganizationId)("acme")
      }
      const global: Scope.ScopeRef = { kind: "global" }
      members.push({
        name,
        token,
        world: {
          keyHash,
          keyId,
          key,
          user,
          membership,
          team,
          organization,
          global,
          scopes: [key, user, membership, team, organization, global]
        }
      })
    }
    return members
  })

/**
 * Runs `requests` copies of `request` at once, member and instance taken in turn, and
 * counts those admitted: a `BudgetExceeded` counts as refused, any other failure fails.
 */
const race = <E extends { readonly _tag: string }, R>(
  instances: ReadonlyArray<Context.Context<R>>,
  members: ReadonlyArray<Member>,
  requests: number,
  request: (member: Member) => Effect.Effect<void, E, R>
) =>
  Effect.map(
    Effect.all(
      Array.from({ length: requests }, (_, i) => {
        const member = members[i % members.length]
        const instance = instances[i % instances.length]
        if (member === undefined || instance === undefined) return Effect.dieMessage("no member")
        return request(member).pipe(
          Effect.as(true),
          Effect.catchIf(
            (error) => error._tag === "BudgetExceeded",
            () => Effect.succeed(false)
          ),
          Effect.provide(instance)
        )
      }),
      { concurrency: "unbounded" }
    ),
    (results) => results.filter(Boolean).length
  )

/**
 * `requests` concurrent hold+settle of $1 against a team budget of $25, spread over
 * `instances` (store instances with their own connections): exactly 25 are admitted,
 * every other one is refused with `BudgetExceeded` (any other failure, a deadlock
 * say, fails the test), nothing stays held, and the team's spend is the sum of the
 * spend log.
 */
export const concurrentTeamBudget = (
  instances: ReadonlyArray<Context.Context<StoreServices>>,
  requests: number
) =>
  Effect.gen(function* () {
    const first = instances[0]
    if (first === undefined) return yield* Effect.dieMessage("no store instance")
    const names = Array.from({ length: 8 }, (_, i) => `member${i}`)
    const members = yield* Effect.provide(makeTeamOf(names, limits({ maxBudget: 25 })), first)
    const admitted = yield* race(instances, members, requests, (member) =>
      Effect.gen(function* () {
        const ledger = yield* SpendLedger
        const held = yield* ledger.hold(holdRequest(member.world.scopes, usd(1)))
        yield* Effect.yieldNow()
        yield* ledger.settle(held, usd(1), logDraft(member.world, held, held.expiresAt))
      })
    )
    yield* expectExactTeam(instances, members, admitted, usd(1))
  })

/**
 * What every instance must see after the requests on team "pool" are done: exactly
 * 25 admitted, the team charged 25 times `each` and never more, the spend log summing
 * to the team's spend with one row per admitted request, and nothing left held.
 */
const expectExactTeam = (
  instances: ReadonlyArray<Context.Context<StoreServices>>,
  members: ReadonlyArray<Member>,
  admitted: number,
  each: Money.Money
) =>
  Effect.gen(function* () {
    const check = Effect.gen(function* () {
      const ledger = yield* SpendLedger
      const team = yield* ledger.spendOf({ kind: "team", id: teamId("pool") })
      const logs = yield* Effect.flatMap(SpendLogRepo, (repo) => repo.query({ limit: 100_000 }))
      const logged = logs.reduce((sum, row) => Money.add(sum, row.cost), Money.zero)
      const budget = Money.make(25n * each)
      expect(admitted).toBe(25)
      expect(team.total).toBe(budget)
      expect(team.total <= budget).toBe(true)
      expect(logged).toBe(team.total)
      expect(logs.length).toBe(admitted)
      for (const member of members) {
        for (const scope of member.world.scopes) expect((yield* ledger.spendOf(scope)).held).toBe(0n)
      }
    })
    // Every instance sees the same, committed state.
    for (const instance of instances) yield* Effect.provide(check, instance)
  })

/**
 * `requests` concurrent authorize+settle through `BudgetPolicy` (key authentication,
 * pricing, a strict hold, the charge), spread over `instances` (each a store and a
 * policy of its own), against a team budget that fits exactly 25 of them: the checks
 * of {@link concurrentTeamBudget}. Any failure other than `BudgetExceeded` fails the test.
 */
export const concurrentAuthorizeSettle = (
  instances: ReadonlyArray<Context.Context<StoreServices | BudgetPolicy.BudgetPolicy | Pricing.Pricing>>,
  requests: number
) =>
  Effect.gen(function* () {
    const first = instances[0]
    if (first === undefined) return yield* Effect.dieMessage("no store instance")
    // Settled at the worst case the hold reserved, so 25 holds and 25 charges are the same money.
    const usage = { promptTokens: 100, completionTokens: 100 }
    const each = yield* Effect.provide(
      Effect.flatMap(Pricing.Pricing, (pricing) => pricing.cost("small", usage)),
      first
    )
    const names = Array.from({ length: 8 }, (_, i) => `member${i}`)
    const teamLimits = new Limits.Limits({ ...Limits.none, maxBudget: Option.some(Money.make(25n * each)) })
    const members = yield* Effect.provide(makeTeamOf(names, teamLimits), first)
    const admitted = yield* race(instances, members, requests, (member) =>
      Effect.gen(function* () {
        const policy = yield* BudgetPolicy.BudgetPolicy
        const admission = yield* policy.authorize({
          apiKey: member.token,
          model: "small",
          promptTokens: usage.promptTokens,
          maxOutputTokens: usage.completionTokens
        })
        yield* Effect.yieldNow()
        yield* policy.settle(admission, usage)
      })
    )
    yield* expectExactTeam(instances, members, admitted, each)
  })

/** The request path over a store: key authentication, the policy, and test prices. */
export const policyOver = <E, R>(store: Layer.Layer<StoreServices, E, R>) =>
  BudgetPolicy.layer().pipe(
    Layer.provideMerge(KeyAuth.layer().pipe(Layer.provideMerge(Invalidation.layerLocal))),
    Layer.provideMerge(Pricing.layer(testPricing)),
    Layer.provideMerge(store)
  )

/**
 * Rows corrupted with raw SQL (a budget_duration of "banana", a negative budget, a
 * team id pointing nowhere, malformed metadata JSON) fail only their owner's requests
 * with `CorruptRecord`; every other member of the same team keeps working. A budget
 * link set to NULL behind the store's back reads as "no cap of their own".
 *
 * `raw` is a client on the same database.
 */
export const corruptRows = (raw: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    const members = yield* makeTeamOf(names, limits({ maxBudget: 100 }), (name) =>
      name === "erin" || name === "frank" ? Option.some(limits({ maxBudget: 5 })) : Option.none()
    )
    const byName = new Map(members.map((m) => [m.name, m] as const))
    const token = (name: string) => byName.get(name)?.token ?? ""

    yield* raw`UPDATE tb_users SET budget_duration = 'banana' WHERE user_id = 'alice'`
    yield* raw`UPDATE tb_keys SET max_budget = -5 WHERE key_id = 'key-bob'`
    yield* raw`UPDATE tb_keys SET team_id = 'nowhere' WHERE key_id = 'key-carol'`
    yield* raw`UPDATE tb_users SET metadata = '{not json' WHERE user_id = 'dave'`
    // The write LiteLLM accepted for `max_budget_in_team: null`.
    yield* raw`UPDATE tb_memberships SET budget_id = NULL WHERE user_id = 'frank'`

    const policy = yield* BudgetPolicy.BudgetPolicy
    const authorize = (name: string) =>
      policy.authorize({ apiKey: token(name), model: "small", promptTokens: 100, maxOutputTokens: 100 })

    const refused = [
      ["alice", "user", "alice"],
      ["bob", "key", "key-bob"],
      ["carol", "key", "key-carol"],
      ["dave", "user", "dave"]
    ] as const
    for (const [name, entity, id] of refused) {
      const error = yield* failure(authorize(name), "CorruptRecord")
      expect({ entity: error.entity, id: error.id }).toEqual({ entity, id })
      const http = toHttpError(error)
      expect(http.status).toBe(500)
      expect(http.body.error.type).toBe("corrupt_record")
      // Never the key hash, whatever broke.
      expect(JSON.stringify(http)).not.toContain(byName.get(name)?.world.keyHash ?? "?")
    }
    const carol = yield* failure(authorize("carol"), "CorruptRecord")
    expect(carol.detail).toContain("nowhere")

    for (const name of ["erin", "frank"]) {
      const admission = yield* authorize(name)
      const settlement = yield* policy.settle(admission, { promptTokens: 100, completionTokens: 50 })
      expect(settlement.cost > 0n).toBe(true)
    }

    const frank = yield* Effect.flatMap(MembershipRepo, (m) => m.find(teamId("pool"), userId("frank")))
    expect(Option.map(frank, (m) => Option.isNone(m.budget))).toEqual(Option.some(true))
    const erin = yield* Effect.flatMap(MembershipRepo, (m) => m.find(teamId("pool"), userId("erin")))
    expect(Option.flatMap(erin, (m) => Option.flatMap(m.budget, (b) => b.limits.maxBudget))).toEqual(
      Option.some(usd(5))
    )
    // The rows that are fine read as before, lists of members included.
    expect(Option.isSome(yield* Effect.flatMap(TeamRepo, (t) => t.find(teamId("pool"))))).toBe(true)
    expect((yield* Effect.flatMap(MembershipRepo, (m) => m.listByTeam(teamId("pool")))).length).toBe(6)
    expect(Option.isSome(yield* Effect.flatMap(UserRepo, (u) => u.find(userId("erin"))))).toBe(true)
    const org = yield* Effect.flatMap(OrganizationRepo, (o) =>
      o.find(Schema.decodeSync(Ids.OrganizationId)("acme"))
    )
    expect(Option.isSome(org)).toBe(true)
    // A list that needs a corrupt row fails naming that row.
    const keys = yield* failure(
      Effect.flatMap(KeyRepo, (k) => k.listByTeam(teamId("pool"))),
      "CorruptRecord"
    )
    expect(keys.entity).toBe("key")
  })

/**
 * A refused hold writes nothing, not even the counter of a scope it is the first to
 * name; a counter it would make binds with its entity's cap all the same. An admitted
 * hold makes the counters it needs.
 */
export const refusalMakesNoCounter = (raw: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const world = yield* makeWorld({ team: limits({ maxBudget: 1 }) })
    const stranger: Scope.ScopeRef = { kind: "end_user", id: endUserId("first-seen") }
    // An end user with a cap and no counter: a row written behind the store's back.
    yield* raw`INSERT INTO tb_end_users (end_user_id, max_budget, blocked, created_at)
      VALUES (${"capped"}, ${usd(0.25)}, ${0}, ${0})`
    const capped: Scope.ScopeRef = { kind: "end_user", id: endUserId("capped") }
    const countersOf = (key: string) =>
      raw<{ readonly held: unknown; readonly max_budget: unknown }>`SELECT held, max_budget FROM tb_counters
        WHERE scope_key = ${key}`
    const state = Effect.map(dumpTables(raw), toText)
    const before = yield* state

    const overTeam = yield* failure(hold([...world.scopes, stranger], usd(2)), "BudgetExceeded")
    expect(overTeam.scope).toBe("team")
    const overOwnCap = yield* failure(hold([...world.scopes, capped], usd(0.5)), "BudgetExceeded")
    expect([overOwnCap.scope, overOwnCap.id]).toEqual(["end_user", "capped"])
    expect(yield* state).toBe(before)

    yield* hold([...world.scopes, stranger, capped], usd(0.2))
    expect(
      (yield* countersOf("end_user:first-seen")).map((row) => [Number(row.held), row.max_budget])
    ).toEqual([[Number(usd(0.2)), null]])
    expect((yield* countersOf("end_user:capped")).map((row) => Number(row.max_budget))).toEqual([
      Number(usd(0.25))
    ])
  })

/** Money far beyond 2^53 nano-dollars round-trips exactly, through entity rows and counters. */
export const bigMoney = Effect.gen(function* () {
  const huge = Money.make(900_000_000_000_000_001n) // $900,000,000.000000001
  const cost = Money.make(9_007_199_254_740_993n) // 2^53 + 1
  yield* makeOrganization("acme")
  yield* makeTeam("pool", new Limits.Limits({ ...Limits.none, maxBudget: Option.some(huge) }), {
    organizationId: "acme"
  })
  const team = yield* Effect.flatMap(TeamRepo, (t) => t.find(teamId("pool")))
  expect(Option.flatMap(team, (t) => t.limits.maxBudget)).toEqual(Option.some(huge))
  const ledger = yield* SpendLedger
  const scopes: ReadonlyArray<Scope.ScopeRef> = [{ kind: "team", id: teamId("pool") }]
  for (let i = 0; i < 3; i++) {
    const held = yield* ledger.hold(holdRequest(scopes, cost))
    expect(held.amount).toBe(cost)
    const settlement = yield* ledger.settle(held, cost, {
      ...logDraft(
        {
          keyHash: Token.hashToken("sk-x"),
          keyId: keyIdOf("k"),
          key: scopes[0] ?? { kind: "global" },
          user: scopes[0] ?? { kind: "global" },
          membership: scopes[0] ?? { kind: "global" },
          team: scopes[0] ?? { kind: "global" },
          organization: scopes[0] ?? { kind: "global" },
          global: { kind: "global" },
          scopes
        },
        held,
        held.expiresAt
      )
    })
    expect(Option.map(settlement.tightest, (h) => h.remaining)).toEqual(
      Option.some(Money.make(huge - cost * BigInt(i + 1)))
    )
  }
  const spend = yield* ledger.spendOf({ kind: "team", id: teamId("pool") })
  expect(spend.total).toBe(Money.make(cost * 3n))
  const logs = yield* Effect.flatMap(SpendLogRepo, (repo) => repo.query({}))
  expect(logs.map((row) => row.cost)).toEqual([cost, cost, cost])
})

/** Running the migrations again changes nothing and applies nothing. */
export const migrateTwice = (raw: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    yield* makeTeam("pool")
    for (let i = 0; i < 2; i++) {
      expect(yield* Effect.provideService(SqlStore.migrate, SqlClient.SqlClient, raw)).toEqual([])
    }
    const recorded = yield* raw<{
      readonly migration_id: unknown
    }>`SELECT migration_id FROM ${raw(SqlStore.MIGRATIONS_TABLE)}`
    const ids = Object.keys(migrations).map((name) => Number(name.split("_")[0]))
    expect(recorded.map((row) => Number(row.migration_id)).sort((a, b) => a - b)).toEqual(ids)
    expect(Option.isSome(yield* Effect.flatMap(TeamRepo, (t) => t.find(teamId("pool"))))).toBe(true)
  })
