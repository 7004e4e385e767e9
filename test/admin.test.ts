/**
 * The management operations through the LiteLLM-compatible contract: JSON in,
 * `Admin` over the memory store, LiteLLM JSON out.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Either, Layer, Option, Queue, Schema, TestClock } from "effect"
import * as fc from "fast-check"
import {
  Admin,
  Api,
  Ids,
  Invalidation,
  KeyAuth,
  MembershipRepo,
  MemoryStore,
  Money,
  Principal,
  SpendLedger,
  Token
} from "../src/index.js"

const makeLayer = () =>
  Layer.mergeAll(Admin.Admin.Default, KeyAuth.layer()).pipe(
    Layer.provideMerge(Layer.merge(MemoryStore.layer(), Invalidation.layerLocal))
  )

type Caller = Principal.Caller
const master = Principal.master

/** Calls an endpoint as the HTTP layer does: method and path, then the body or the query. */
const call = (caller: Caller, endpoint: string, input: object = {}) => {
  const route = Api.Routes.routes.find((candidate) => `${candidate.method} ${candidate.path}` === endpoint)
  if (route === undefined) throw new Error(`no endpoint ${endpoint}`)
  return route.handle(caller, input)
}

/** The value at a path of rendered JSON. */
const at = (value: unknown, ...path: ReadonlyArray<string | number>): unknown =>
  path.reduce<unknown>(
    (current, key) =>
      typeof current === "object" && current !== null
        ? Object.entries(current).find(([name]) => name === String(key))?.[1]
        : undefined,
    value
  )

const listAt = (value: unknown, ...path: ReadonlyArray<string | number>): ReadonlyArray<unknown> => {
  const found = at(value, ...path)
  return Array.isArray(found) ? found : []
}

const Generated = Schema.Struct({ key: Schema.String, token_id: Schema.String })

const generate = (caller: Caller, body: object) =>
  Effect.map(call(caller, "POST /key/generate", body), Schema.decodeUnknownSync(Generated))

const callerOf = (token: string) =>
  Effect.flatMap(KeyAuth.KeyAuth, (auth) => auth.authenticate(token)).pipe(
    Effect.map((principal): Caller => ({ _tag: "Key", principal }))
  )

/**
 * The error of an effect that must fail. A success fails the test with a short
 * message (printing a whole response as the failure is slow).
 */
const refusal = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.flatMap(Effect.either(effect), (outcome) =>
    Either.isLeft(outcome)
      ? Effect.succeed(outcome.left)
      : Effect.dieMessage("expected a refusal, got a success")
  )

/** Lets the key cache's invalidation fiber run after a write. */
const settleFibers = Effect.repeatN(Effect.yieldNow(), 20)

/**
 * Acme, with team research (budget $1000 per 30 days) where carol is an admin and
 * alice a member, and team ops where dave is an admin; one key each.
 */
const world = Effect.gen(function* () {
  yield* call(master, "POST /organization/new", { organization_id: "acme", organization_alias: "Acme" })
  yield* call(master, "POST /team/new", {
    team_id: "research",
    team_alias: "Research",
    organization_id: "acme",
    max_budget: 1000,
    budget_duration: "30d"
  })
  yield* call(master, "POST /team/new", { team_id: "ops", team_alias: "Ops" })
  yield* call(master, "POST /team/member_add", {
    team_id: "research",
    member: [{ user_id: "carol", role: "admin" }, { user_id: "alice" }]
  })
  yield* call(master, "POST /team/member_add", { team_id: "ops", member: { user_id: "dave", role: "admin" } })
  const keys = {
    carol: yield* generate(master, { team_id: "research", user_id: "carol" }),
    alice: yield* generate(master, { team_id: "research", user_id: "alice", key_alias: "alice-laptop" }),
    dave: yield* generate(master, { team_id: "ops", user_id: "dave" })
  }
  return {
    keys,
    carol: yield* callerOf(keys.carol.key),
    alice: yield* callerOf(keys.alice.key),
    dave: yield* callerOf(keys.dave.key)
  }
})

type World = Effect.Effect.Success<typeof world>

/** Everything the master can see, to prove that a refused operation changed nothing. */
const snapshot = Effect.gen(function* () {
  const parts = yield* Effect.all([
    call(master, "GET /team/info", { team_id: "research" }),
    call(master, "GET /team/info", { team_id: "ops" }),
    call(master, "GET /user/info", { user_id: "alice" }),
    call(master, "GET /user/info", { user_id: "carol" }),
    call(master, "GET /organization/info", { organization_id: "acme" }),
    call(master, "GET /global/budget/info")
  ])
  return JSON.stringify(parts)
})

const run = <A, E>(
  body: Effect.Effect<
    A,
    E,
    Admin.Admin | KeyAuth.KeyAuth | MembershipRepo | SpendLedger | Invalidation.Invalidation
  >
) => Effect.provide(body, makeLayer())

describe("SPEC 1: clearing a member's budget", () => {
  it.effect(
    "member_update with max_budget_in_team null leaves alice without a cap, and she keeps working",
    () =>
      run(
        Effect.gen(function* () {
          const team = yield* call(master, "POST /team/new", {
            team_id: "research",
            team_alias: "Research",
            max_budget: 1000,
            budget_duration: "30d"
          })
          expect(team).toMatchObject({
            team_id: "research",
            max_budget: 1000,
            budget_duration: "30d",
            spend: 0
          })

          const added = yield* call(master, "POST /team/member_add", {
            team_id: "research",
            member: { user_id: "alice" },
            max_budget_in_team: 50
          })
          expect(listAt(added, "updated_users")).toMatchObject([
            { user_id: "alice", user_role: "internal_user" }
          ])
          expect(listAt(added, "updated_team_memberships")).toMatchObject([
            { user_id: "alice", role: "user", litellm_budget_table: { max_budget: 50 } }
          ])
          const key = yield* generate(master, { team_id: "research", user_id: "alice" })

          const cleared = yield* call(master, "POST /team/member_update", {
            team_id: "research",
            user_id: "alice",
            max_budget_in_team: null
          })
          expect(cleared).toMatchObject({ user_id: "alice", budget_id: null, litellm_budget_table: null })

          const membership = yield* Effect.flatMap(MembershipRepo, (repo) =>
            repo.find(Ids.TeamId.make("research"), Ids.UserId.make("alice"))
          )
          expect(Option.map(membership, (m) => m.budget)).toEqual(Option.some(Option.none()))

          const info = yield* call(master, "GET /team/info", { team_id: "research" })
          expect(listAt(info, "team_memberships")).toMatchObject([
            {
              team_id: "research",
              user_id: "alice",
              role: "user",
              spend: 0,
              budget_id: null,
              litellm_budget_table: null
            }
          ])
          expect(at(info, "team_info", "max_budget")).toBe(1000)

          // The read side accepts what the write side wrote: her key still authenticates.
          const principal = yield* callerOf(key.key)
          expect(
            principal._tag === "Key" && Option.flatMap(principal.principal.membership, (m) => m.budget)
          ).toEqual(Option.none())
        })
      )
  )

  it.effect(
    "setting a member limit again gives her a budget of her own; clearing the last limit removes it",
    () =>
      run(
        Effect.gen(function* () {
          yield* world
          const member = (body: object) =>
            call(master, "POST /team/member_update", { team_id: "research", user_id: "alice", ...body })
          expect(yield* member({ max_budget_in_team: 20, tpm_limit: 500 })).toMatchObject({
            litellm_budget_table: { max_budget: 20, tpm_limit: 500 }
          })
          expect(yield* member({ max_budget_in_team: null })).toMatchObject({
            litellm_budget_table: { max_budget: null, tpm_limit: 500 }
          })
          expect(yield* member({ tpm_limit: null })).toMatchObject({
            budget_id: null,
            litellm_budget_table: null
          })
        })
      )
  )
})

/** [field, value sent, value rendered, rendered once cleared] */
type FieldCase = readonly [string, unknown, unknown, unknown]

const limitCases: ReadonlyArray<FieldCase> = [
  ["max_budget", 12.5, 12.5, null],
  ["soft_budget", 10, 10, null],
  ["budget_duration", "1mo", "1mo", null],
  ["tpm_limit", 1000, 1000, null],
  ["rpm_limit", 60, 60, null],
  ["max_parallel_requests", 4, 4, null]
]

interface Entity {
  readonly name: string
  readonly update: string
  readonly base: (w: World) => object
  /** The entity as the master reads it back. */
  readonly read: (w: World) => Effect.Effect<unknown, unknown, Admin.Admin>
  /** The field name as read back, when it differs. */
  readonly readName?: (field: string) => string
  readonly fields: ReadonlyArray<FieldCase>
  readonly prepare?: Effect.Effect<unknown, unknown, Admin.Admin>
}

const memberOf = (info: unknown, userId: string) =>
  listAt(info, "team_memberships").find((member) => at(member, "user_id") === userId)

const entities: ReadonlyArray<Entity> = [
  {
    name: "team",
    update: "POST /team/update",
    base: () => ({ team_id: "research" }),
    read: () =>
      Effect.map(call(master, "GET /team/info", { team_id: "research" }), (info) => at(info, "team_info")),
    fields: [
      ...limitCases,
      ["organization_id", "acme", "acme", null],
      ["models", ["gpt-4o-mini"], ["gpt-4o-mini"], []],
      ["metadata", { cost_center: "42" }, { cost_center: "42" }, {}]
    ]
  },
  {
    name: "key",
    update: "POST /key/update",
    base: (w) => ({ key: w.keys.alice.key }),
    read: (w) =>
      Effect.map(call(master, "GET /key/info", { key: w.keys.alice.token_id }), (info) => at(info, "info")),
    fields: [
      ...limitCases,
      ["key_alias", "ci", "ci", null],
      ["models", ["gpt-4o-mini"], ["gpt-4o-mini"], []],
      ["metadata", { purpose: "ci" }, { purpose: "ci" }, {}]
    ]
  },
  {
    name: "user",
    update: "POST /user/update",
    base: () => ({ user_id: "alice" }),
    read: () =>
      Effect.map(call(master, "GET /user/info", { user_id: "alice" }), (info) => at(info, "user_info")),
    fields: [
      ...limitCases,
      ["user_email", "alice@example.com", "alice@example.com", null],
      ["models", ["gpt-4o"], ["gpt-4o"], []]
    ]
  },
  {
    name: "organization",
    update: "POST /organization/update",
    base: () => ({ organization_id: "acme" }),
    read: () => call(master, "GET /organization/info", { organization_id: "acme" }),
    fields: [...limitCases, ["models", ["gpt-4o"], ["gpt-4o"], []]]
  },
  {
    name: "customer",
    update: "POST /customer/update",
    prepare: call(master, "POST /customer/new", { user_id: "customer-42" }),
    base: () => ({ user_id: "customer-42" }),
    read: () => call(master, "GET /customer/info", { end_user_id: "customer-42" }),
    fields: limitCases
  },
  {
    name: "member",
    update: "POST /team/member_update",
    base: () => ({ team_id: "research", user_id: "alice" }),
    read: () =>
      Effect.map(call(master, "GET /team/info", { team_id: "research" }), (info) => {
        const table = at(memberOf(info, "alice"), "litellm_budget_table")
        return table === null ? {} : table
      }),
    readName: (field) => (field === "max_budget_in_team" ? "max_budget" : field),
    fields: [
      ["max_budget_in_team", 50, 50, null],
      ["budget_duration", "7d", "7d", null],
      ["tpm_limit", 100, 100, null],
      ["rpm_limit", 10, 10, null]
    ]
  },
  {
    name: "global budget",
    update: "POST /global/budget/update",
    base: () => ({}),
    read: () => call(master, "GET /global/budget/info"),
    fields: limitCases
  }
]

/** A field the entity accepts that is not `field`, to send while `field` stays absent. */
const otherField = (entity: Entity, field: string): readonly [string, unknown] => {
  const other = entity.fields.find(([name]) => name !== field && name.endsWith("_limit"))
  if (other === undefined) throw new Error(`no other field on ${entity.name}`)
  return [other[0], 7]
}

describe("absent, null, value on every update operation (SPEC 4)", () => {
  for (const entity of entities) {
    it.effect(`${entity.name}: each field is set by a value, kept when absent, cleared by null`, () =>
      run(
        Effect.gen(function* () {
          const w = yield* world
          if (entity.prepare !== undefined) yield* entity.prepare
          const readField = (field: string) =>
            Effect.map(entity.read(w), (value) => {
              const found = at(value, entity.readName?.(field) ?? field)
              return found === undefined ? null : found
            })
          for (const [field, value, rendered, cleared] of entity.fields) {
            yield* call(master, entity.update, { ...entity.base(w), [field]: value })
            expect(yield* readField(field), `${entity.name}.${field} set`).toEqual(rendered)

            const [other, otherValue] = otherField(entity, field)
            yield* call(master, entity.update, { ...entity.base(w), [other]: otherValue })
            expect(yield* readField(field), `${entity.name}.${field} absent`).toEqual(rendered)

            yield* call(master, entity.update, { ...entity.base(w), [field]: null })
            expect(yield* readField(field), `${entity.name}.${field} null`).toEqual(cleared)
          }
        })
      )
    )
  }

  it.effect(
    "key duration: a value sets the expiry that long from now, null removes it, absent keeps it",
    () =>
      run(
        Effect.gen(function* () {
          yield* TestClock.setTime(Date.UTC(2025, 0, 31, 12))
          const w = yield* world
          const read = Effect.map(call(master, "GET /key/info", { key: w.keys.alice.token_id }), (info) =>
            at(info, "info", "expires")
          )
          yield* call(master, "POST /key/update", { key: w.keys.alice.key, duration: "1mo" })
          // Calendar months: January 31 plus one month is February 28.
          expect(yield* read).toBe("2025-02-28T12:00:00.000Z")
          yield* call(master, "POST /key/update", { key: w.keys.alice.key, tpm_limit: 5 })
          expect(yield* read).toBe("2025-02-28T12:00:00.000Z")
          yield* call(master, "POST /key/update", { key: w.keys.alice.key, duration: null })
          expect(yield* read).toBeNull()
        })
      )
  )

  it.effect("fields that cannot be cleared refuse null and keep their value", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        const cases: ReadonlyArray<readonly [string, object, string]> = [
          ["POST /team/update", { team_id: "research" }, "team_alias"],
          ["POST /team/update", { team_id: "research" }, "blocked"],
          ["POST /key/update", { key: w.keys.alice.key }, "blocked"],
          ["POST /user/update", { user_id: "alice" }, "user_role"],
          ["POST /organization/update", { organization_id: "acme" }, "organization_alias"],
          ["POST /team/member_update", { team_id: "research", user_id: "alice" }, "role"]
        ]
        const before = yield* snapshot
        for (const [endpoint, base, field] of cases) {
          const error = yield* refusal(call(master, endpoint, { ...base, [field]: null }))
          expect(error).toMatchObject({ _tag: "InvalidRequest", path: field })
        }
        expect(yield* snapshot).toBe(before)
        const renamed = yield* call(master, "POST /team/update", { team_id: "research", team_alias: "R&D" })
        expect(renamed).toMatchObject({ team_alias: "R&D", max_budget: 1000 })
      })
    )
  )
})

describe("invalid writes are refused with the field's path and change nothing", () => {
  const bad: ReadonlyArray<readonly [string, object, string]> = [
    ["negative money", { max_budget: -5 }, "max_budget"],
    ["NaN as a string", { max_budget: "NaN" }, "max_budget"],
    ["a number as a string", { tpm_limit: "100" }, "tpm_limit"],
    ["an unknown duration", { budget_duration: "banana" }, "budget_duration"],
    ["an unknown field", { max_budgett: 5 }, "max_budgett"],
    ["a wrong type", { rpm_limit: [1] }, "rpm_limit"],
    ["a good field with a bad one", { max_budget: 1, tpm_limit: -1 }, "tpm_limit"]
  ]

  for (const entity of entities) {
    it.effect(`${entity.name}`, () =>
      run(
        Effect.gen(function* () {
          const w = yield* world
          if (entity.prepare !== undefined) yield* entity.prepare
          const before = JSON.stringify(yield* entity.read(w))
          const all = yield* snapshot
          for (const [name, body, path] of bad) {
            const rename = (name: string) =>
              entity.name === "member" && name === "max_budget" ? "max_budget_in_team" : name
            const good = entity.name === "member" ? { max_budget_in_team: 1 } : { max_parallel_requests: 9 }
            const sent = {
              ...good,
              ...Object.fromEntries(Object.entries(body).map(([k, v]) => [rename(k), v]))
            }
            const error = yield* refusal(call(master, entity.update, { ...entity.base(w), ...sent }))
            expect(error, name).toMatchObject({ _tag: "InvalidRequest", path: rename(path) })
          }
          expect(JSON.stringify(yield* entity.read(w))).toBe(before)
          expect(yield* snapshot).toBe(all)
        })
      )
    )
  }

  it.effect("team_alias null, a non-member's key and a missing team change nothing", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        const before = yield* snapshot
        expect(
          yield* refusal(
            call(master, "POST /team/update", { team_id: "research", team_alias: null, max_budget: 1 })
          )
        ).toMatchObject({ _tag: "InvalidRequest", path: "team_alias" })
        expect(
          yield* refusal(
            call(master, "POST /key/update", { key: w.keys.alice.key, team_id: "ops", max_budget: 1 })
          )
        ).toMatchObject({
          _tag: "InvalidRequest",
          path: "user_id",
          detail: "user alice is not a member of team ops"
        })
        expect(
          yield* refusal(call(master, "POST /key/generate", { team_id: "ops", user_id: "alice" }))
        ).toMatchObject({ _tag: "InvalidRequest", path: "user_id" })
        expect(
          yield* refusal(call(master, "POST /team/update", { team_id: "research", organization_id: "nope" }))
        ).toMatchObject({ _tag: "NotFound", entity: "organization", id: "nope" })
        expect(
          yield* refusal(call(master, "POST /team/update", { team_id: "nope", max_budget: 1 }))
        ).toMatchObject({
          _tag: "NotFound",
          entity: "team"
        })
        expect(yield* snapshot).toBe(before)
      })
    )
  )

  it.effect("generated bad bodies are refused at the bad field and nothing is written (property)", () =>
    run(
      Effect.gen(function* () {
        yield* world
        const before = yield* snapshot
        const notNumber = fc.oneof(
          fc.string(),
          fc.boolean(),
          fc.constant("NaN"),
          fc.array(fc.integer(), { maxLength: 2 })
        )
        const badValue = fc.oneof(
          fc.record({
            field: fc.constantFrom("max_budget", "soft_budget"),
            value: fc.oneof(notNumber, fc.double({ max: -1e-6 }))
          }),
          fc.record({
            field: fc.constantFrom("tpm_limit", "rpm_limit", "max_parallel_requests"),
            value: fc.oneof(notNumber, fc.integer({ max: -1 }), fc.constant(0.5))
          }),
          fc.record({
            field: fc.constant("budget_duration"),
            value: fc.oneof(
              fc.integer(),
              fc.string().filter((s) => !/^[1-9]\d{0,5}(s|m|h|d|mo)$/.test(s))
            )
          }),
          fc.record({
            field: fc.constant("blocked"),
            value: fc.oneof(fc.string(), fc.integer(), fc.constant(null))
          })
        )
        for (const { field, value } of fc.sample(badValue, 200)) {
          const error = yield* refusal(
            call(master, "POST /team/update", { team_id: "research", max_budget: 777, [field]: value })
          )
          expect(error).toMatchObject({ _tag: "InvalidRequest", path: field })
        }
        expect(yield* snapshot).toBe(before)
      })
    )
  )
})

type Expect = "ok" | "forbidden"
type Row = readonly [string, Expect, string, (w: World) => object]

const asMember: ReadonlyArray<Row> = [
  ["create a team", "forbidden", "POST /team/new", () => ({ team_alias: "mine" })],
  [
    "raise the team budget",
    "forbidden",
    "POST /team/update",
    () => ({ team_id: "research", max_budget: 5000 })
  ],
  ["change a team that does not exist", "forbidden", "POST /team/update", () => ({ team_id: "nope" })],
  ["read its own team", "forbidden", "GET /team/info", () => ({ team_id: "research" })],
  ["read another team", "forbidden", "GET /team/info", () => ({ team_id: "ops" })],
  [
    "add a member",
    "forbidden",
    "POST /team/member_add",
    () => ({ team_id: "research", member: { user_id: "eve" } })
  ],
  [
    "raise its own member budget",
    "forbidden",
    "POST /team/member_update",
    () => ({ team_id: "research", user_id: "alice", max_budget_in_team: 1e6 })
  ],
  ["make a key", "forbidden", "POST /key/generate", () => ({ team_id: "research", user_id: "alice" })],
  [
    "raise its own key's budget",
    "forbidden",
    "POST /key/update",
    (w) => ({ key: w.keys.alice.key, max_budget: 1e6 })
  ],
  ["block another key", "forbidden", "POST /key/block", (w) => ({ key: w.keys.carol.key })],
  ["delete another key", "forbidden", "POST /key/delete", (w) => ({ keys: [w.keys.dave.key] })],
  ["read its own key", "ok", "GET /key/info", () => ({})],
  ["read its own key by token", "ok", "GET /key/info", (w) => ({ key: w.keys.alice.key })],
  ["read its own key by token_id", "ok", "GET /key/info", (w) => ({ key: w.keys.alice.token_id })],
  ["read another key", "forbidden", "GET /key/info", (w) => ({ key: w.keys.carol.key })],
  ["raise its user budget", "forbidden", "POST /user/update", () => ({ user_id: "alice", max_budget: 1e6 })],
  ["read its user", "forbidden", "GET /user/info", () => ({ user_id: "alice" })],
  ["create an organization", "forbidden", "POST /organization/new", () => ({ organization_alias: "x" })],
  ["create a customer", "forbidden", "POST /customer/new", () => ({ user_id: "c" })],
  ["read spend logs", "forbidden", "GET /spend/logs", () => ({})],
  ["raise the global budget", "forbidden", "POST /global/budget/update", () => ({ max_budget: 1e6 })],
  ["delete its team", "forbidden", "POST /team/delete", () => ({ team_ids: ["research"] })]
]

const asTeamAdmin: ReadonlyArray<Row> = [
  ["read its team", "ok", "GET /team/info", () => ({ team_id: "research" })],
  ["read another team", "forbidden", "GET /team/info", () => ({ team_id: "ops" })],
  [
    "add a member",
    "ok",
    "POST /team/member_add",
    () => ({ team_id: "research", member: { user_id: "eve" } })
  ],
  [
    "add a member elsewhere",
    "forbidden",
    "POST /team/member_add",
    () => ({ team_id: "ops", member: { user_id: "eve" } })
  ],
  [
    "cap a member",
    "ok",
    "POST /team/member_update",
    () => ({ team_id: "research", user_id: "alice", max_budget_in_team: 20 })
  ],
  [
    "cap a member elsewhere",
    "forbidden",
    "POST /team/member_update",
    () => ({ team_id: "ops", user_id: "dave", role: "user" })
  ],
  ["remove a member", "ok", "POST /team/member_delete", () => ({ team_id: "research", user_id: "alice" })],
  [
    "remove a member elsewhere",
    "forbidden",
    "POST /team/member_delete",
    () => ({ team_id: "ops", user_id: "dave" })
  ],
  ["make a key of its team", "ok", "POST /key/generate", () => ({ team_id: "research", user_id: "alice" })],
  ["make a key of another team", "forbidden", "POST /key/generate", () => ({ team_id: "ops" })],
  ["make a key of no team", "forbidden", "POST /key/generate", () => ({})],
  ["make a key for a user only", "forbidden", "POST /key/generate", () => ({ user_id: "dave" })],
  ["change a key of its team", "ok", "POST /key/update", (w) => ({ key: w.keys.alice.key, max_budget: 5 })],
  [
    "move a key to another team",
    "forbidden",
    "POST /key/update",
    (w) => ({ key: w.keys.alice.key, team_id: "ops" })
  ],
  [
    "move a key out of any team",
    "forbidden",
    "POST /key/update",
    (w) => ({ key: w.keys.alice.key, team_id: null })
  ],
  [
    "change a key of another team",
    "forbidden",
    "POST /key/update",
    (w) => ({ key: w.keys.dave.key, max_budget: 5 })
  ],
  ["block a key of its team", "ok", "POST /key/block", (w) => ({ key: w.keys.alice.token_id })],
  ["unblock a key of its team", "ok", "POST /key/unblock", (w) => ({ key: w.keys.alice.key })],
  ["block a key of another team", "forbidden", "POST /key/block", (w) => ({ key: w.keys.dave.key })],
  ["delete a key of its team", "ok", "POST /key/delete", (w) => ({ keys: [w.keys.alice.key] })],
  [
    "delete keys of its and another team",
    "forbidden",
    "POST /key/delete",
    (w) => ({ keys: [w.keys.alice.key, w.keys.dave.key] })
  ],
  ["read a key of its team", "ok", "GET /key/info", (w) => ({ key: w.keys.alice.key })],
  ["read a key of another team", "forbidden", "GET /key/info", (w) => ({ key: w.keys.dave.token_id })],
  ["create a team", "forbidden", "POST /team/new", () => ({ team_alias: "mine" })],
  [
    "raise its team's budget",
    "forbidden",
    "POST /team/update",
    () => ({ team_id: "research", max_budget: 5000 })
  ],
  [
    "change its team's models",
    "forbidden",
    "POST /team/update",
    () => ({ team_id: "research", models: ["x"] })
  ],
  [
    "leave its organization",
    "forbidden",
    "POST /team/update",
    () => ({ team_id: "research", organization_id: null })
  ],
  ["delete its team", "forbidden", "POST /team/delete", () => ({ team_ids: ["research"] })],
  [
    "change a user's own budget",
    "forbidden",
    "POST /user/update",
    () => ({ user_id: "alice", max_budget: 1 })
  ],
  ["create a user", "forbidden", "POST /user/new", () => ({ user_id: "eve" })],
  [
    "change its organization",
    "forbidden",
    "POST /organization/update",
    () => ({ organization_id: "acme", max_budget: 1 })
  ],
  ["create a customer", "forbidden", "POST /customer/new", () => ({ user_id: "c" })],
  ["change the global budget", "forbidden", "POST /global/budget/update", () => ({ max_budget: 1 })],
  ["read spend logs", "forbidden", "GET /spend/logs", () => ({})]
]

const asMaster: ReadonlyArray<Row> = [
  ["create a team", "ok", "POST /team/new", () => ({ team_alias: "new" })],
  ["raise a team budget", "ok", "POST /team/update", () => ({ team_id: "research", max_budget: 5000 })],
  ["read any team", "ok", "GET /team/info", () => ({ team_id: "ops" })],
  [
    "add a member anywhere",
    "ok",
    "POST /team/member_add",
    () => ({ team_id: "ops", member: { user_id: "eve" } })
  ],
  ["make a key of any team", "ok", "POST /key/generate", () => ({ team_id: "ops", user_id: "dave" })],
  ["make a key of no team", "ok", "POST /key/generate", () => ({})],
  ["read any key", "ok", "GET /key/info", (w) => ({ key: w.keys.dave.key })],
  ["block any key", "ok", "POST /key/block", (w) => ({ key: w.keys.carol.key })],
  ["change a user's budget", "ok", "POST /user/update", () => ({ user_id: "alice", max_budget: 1 })],
  ["read a user", "ok", "GET /user/info", () => ({ user_id: "carol" })],
  [
    "change an organization",
    "ok",
    "POST /organization/update",
    () => ({ organization_id: "acme", max_budget: 1 })
  ],
  ["create a customer", "ok", "POST /customer/new", () => ({ user_id: "c" })],
  ["read spend logs", "ok", "GET /spend/logs", () => ({})],
  ["change the global budget", "ok", "POST /global/budget/update", () => ({ max_budget: 1e6 })],
  ["delete a team", "ok", "POST /team/delete", () => ({ team_ids: ["ops"] })]
]

describe("authorisation", () => {
  const matrix: ReadonlyArray<readonly [string, (w: World) => Caller, ReadonlyArray<Row>]> = [
    ["a member's key", (w) => w.alice, asMember],
    ["a team admin's key", (w) => w.carol, asTeamAdmin],
    ["the master key", () => master, asMaster]
  ]
  for (const [who, callerOfWorld, rows] of matrix) {
    for (const [what, expected, endpoint, body] of rows) {
      it.effect(`${who} ${expected === "ok" ? "may" : "may not"} ${what}`, () =>
        run(
          Effect.gen(function* () {
            const w = yield* world
            const before = yield* snapshot
            const outcome = yield* Effect.either(call(callerOfWorld(w), endpoint, body(w)))
            if (expected === "ok") {
              expect(outcome._tag, JSON.stringify(outcome)).toBe("Right")
            } else {
              expect(outcome).toMatchObject({ _tag: "Left", left: { _tag: "Forbidden" } })
              expect(yield* snapshot).toBe(before)
            }
          })
        )
      )
    }
  }

  it.effect("a refusal names what was refused and why, without revealing a key", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        const error = yield* refusal(call(w.carol, "POST /key/block", { key: w.keys.dave.key }))
        expect(error.message).toBe("Not allowed to block keys: this key may manage team research only.")
        const other = yield* refusal(call(w.alice, "POST /team/new", { team_alias: "x" }))
        expect(other.message).toBe("Not allowed to create teams: only the master key may do this.")
      })
    )
  )

  it.effect("a demoted admin loses its rights at the next request", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        yield* call(master, "POST /team/member_update", {
          team_id: "research",
          user_id: "carol",
          role: "user"
        })
        yield* settleFibers
        const carol = yield* callerOf(w.keys.carol.key)
        const error = yield* refusal(call(carol, "GET /team/info", { team_id: "research" }))
        expect(error._tag).toBe("Forbidden")
      })
    )
  )
})

describe("operations", () => {
  it.effect("key/generate returns the plaintext once and stores only its hash", () =>
    run(
      Effect.gen(function* () {
        yield* world
        const generated = yield* call(master, "POST /key/generate", {
          team_id: "research",
          user_id: "alice",
          key_alias: "batch",
          max_budget: 25,
          models: ["gpt-4o-mini"],
          metadata: { job: "nightly" }
        })
        const { key, token_id } = Schema.decodeUnknownSync(Generated)(generated)
        expect(key).toMatch(/^sk-[A-Za-z0-9_-]{43}$/)
        expect(generated).toMatchObject({
          token_id,
          key_name: `sk-...${key.slice(-4)}`,
          key_alias: "batch",
          user_id: "alice",
          team_id: "research",
          max_budget: 25,
          models: ["gpt-4o-mini"],
          metadata: { job: "nightly" },
          expires: null,
          blocked: false,
          spend: 0
        })
        expect(JSON.stringify(generated)).not.toContain(Token.hashToken(key))
        const info = yield* call(master, "GET /key/info", { key })
        expect(info).toMatchObject({ key: token_id, info: { token_id, key_alias: "batch" } })
      })
    )
  )

  it.effect("key/generate: missing team or user is NotFound, and nothing is created", () =>
    run(
      Effect.gen(function* () {
        yield* world
        const before = yield* snapshot
        expect(yield* refusal(call(master, "POST /key/generate", { team_id: "nope" }))).toMatchObject({
          _tag: "NotFound",
          entity: "team",
          id: "nope"
        })
        expect(yield* refusal(call(master, "POST /key/generate", { user_id: "nobody" }))).toMatchObject({
          _tag: "NotFound",
          entity: "user"
        })
        expect(yield* snapshot).toBe(before)
      })
    )
  )

  it.effect("member_add creates missing users, refuses existing members and duplicates, all or nothing", () =>
    run(
      Effect.gen(function* () {
        yield* world
        const added = yield* call(master, "POST /team/member_add", {
          team_id: "ops",
          member: [
            { user_id: "erin", user_email: "erin@example.com" },
            { user_id: "alice", role: "admin" }
          ],
          max_budget_in_team: 10
        })
        expect(listAt(added, "updated_users")).toMatchObject([
          { user_id: "erin", user_email: "erin@example.com", user_role: "internal_user" },
          { user_id: "alice" }
        ])
        expect(listAt(added, "updated_team_memberships")).toMatchObject([
          { user_id: "erin", role: "user", litellm_budget_table: { max_budget: 10 } },
          { user_id: "alice", role: "admin", litellm_budget_table: { max_budget: 10 } }
        ])

        const before = yield* snapshot
        const again = yield* refusal(
          call(master, "POST /team/member_add", {
            team_id: "research",
            member: [{ user_id: "frank" }, { user_id: "alice" }]
          })
        )
        expect(again).toMatchObject({ _tag: "AlreadyExists", entity: "membership", id: "research/alice" })
        expect(yield* refusal(call(master, "GET /user/info", { user_id: "frank" }))).toMatchObject({
          _tag: "NotFound"
        })
        const twice = yield* refusal(
          call(master, "POST /team/member_add", {
            team_id: "research",
            member: [{ user_id: "gus" }, { user_id: "gus" }]
          })
        )
        expect(twice).toMatchObject({ _tag: "InvalidRequest", path: "member.1.user_id" })
        const noTeam = yield* refusal(
          call(master, "POST /team/member_add", { team_id: "nope", member: { user_id: "hal" } })
        )
        expect(noTeam).toMatchObject({ _tag: "NotFound", entity: "team" })
        const hal = yield* refusal(call(master, "GET /user/info", { user_id: "hal" }))
        expect(hal._tag).toBe("NotFound")
        expect(yield* snapshot).toBe(before)
      })
    )
  )

  it.effect("team/new: generated id, organization checked, existing id refused", () =>
    run(
      Effect.gen(function* () {
        yield* world
        const team = yield* call(master, "POST /team/new", {
          team_alias: "Anon",
          metadata: null,
          models: null
        })
        expect(at(team, "team_id")).toMatch(/^[0-9a-f-]{36}$/)
        expect(team).toMatchObject({ models: [], metadata: {}, organization_id: null, max_budget: null })
        expect(
          yield* refusal(call(master, "POST /team/new", { team_alias: "X", organization_id: "nope" }))
        ).toMatchObject({ _tag: "NotFound", entity: "organization" })
        expect(
          yield* refusal(call(master, "POST /team/new", { team_id: "ops", team_alias: "Ops 2" }))
        ).toMatchObject({ _tag: "AlreadyExists", entity: "team", id: "ops" })
      })
    )
  )

  it.effect("team/delete removes the team with its memberships and keys", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        expect(yield* call(master, "POST /team/delete", { team_ids: ["research", "research"] })).toEqual({
          deleted_teams: ["research"]
        })
        expect(yield* refusal(call(master, "GET /team/info", { team_id: "research" }))).toMatchObject({
          _tag: "NotFound"
        })
        expect(yield* refusal(call(master, "GET /key/info", { key: w.keys.alice.key }))).toMatchObject({
          _tag: "NotFound",
          entity: "key"
        })
        const alice = yield* call(master, "GET /user/info", { user_id: "alice" })
        expect(listAt(alice, "team_memberships")).toEqual([])
        expect(listAt(alice, "keys")).toEqual([])
        expect(
          yield* refusal(call(master, "POST /team/delete", { team_ids: ["ops", "nope"] }))
        ).toMatchObject({ _tag: "NotFound", id: "nope" })
        expect(at(yield* call(master, "GET /team/info", { team_id: "ops" }), "team_id")).toBe("ops")
      })
    )
  )

  it.effect("blocking a key through the admin API stops it at the next request", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        yield* call(w.carol, "POST /key/block", { key: w.keys.alice.token_id })
        yield* settleFibers
        const blocked = yield* Effect.either(callerOf(w.keys.alice.key))
        expect(Either.isLeft(blocked) && blocked.left._tag).toBe("Blocked")
        yield* call(master, "POST /key/unblock", { key: w.keys.alice.key })
        yield* settleFibers
        expect((yield* callerOf(w.keys.alice.key))._tag).toBe("Key")
      })
    )
  )

  it.scoped("every successful write is announced to the key caches, refusals are not", () =>
    Effect.gen(function* () {
      const w = yield* world
      const changes = yield* Effect.flatMap(Invalidation.Invalidation, (i) => i.subscribe)
      yield* refusal(call(w.alice, "POST /team/update", { team_id: "research", max_budget: 1 }))
      yield* refusal(call(master, "POST /team/update", { team_id: "research", max_budget: -1 }))
      yield* refusal(call(master, "POST /team/update", { team_id: "nope", max_budget: 1 }))
      yield* call(master, "GET /team/info", { team_id: "research" })
      expect(yield* Queue.size(changes)).toBe(0)
      yield* call(master, "POST /team/update", { team_id: "research", max_budget: 1 })
      expect(yield* Queue.size(changes)).toBe(1)
    }).pipe(Effect.provide(makeLayer()))
  )

  it.effect("user/info shows the user's teams, memberships and keys", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        const info = yield* call(master, "GET /user/info", { user_id: "alice" })
        expect(info).toMatchObject({
          user_id: "alice",
          user_info: { user_id: "alice", user_role: "internal_user", max_budget: null },
          teams: [{ team_id: "research" }],
          team_memberships: [
            { team_id: "research", user_id: "alice", role: "user", litellm_budget_table: null }
          ],
          keys: [{ token_id: w.keys.alice.token_id, key_alias: "alice-laptop" }]
        })
      })
    )
  )

  it.effect("customer and organization: create, read, not found", () =>
    run(
      Effect.gen(function* () {
        yield* world
        expect(
          yield* call(master, "POST /customer/new", {
            user_id: "cust-1",
            max_budget: 5,
            budget_duration: "1d"
          })
        ).toMatchObject({ user_id: "cust-1", max_budget: 5, budget_duration: "1d", blocked: false, spend: 0 })
        expect(yield* call(master, "GET /customer/info", { user_id: "cust-1" })).toMatchObject({
          max_budget: 5
        })
        expect(yield* refusal(call(master, "POST /customer/new", { user_id: "cust-1" }))).toMatchObject({
          _tag: "AlreadyExists"
        })
        expect(
          yield* refusal(call(master, "POST /customer/update", { user_id: "ghost", blocked: true }))
        ).toMatchObject({ _tag: "NotFound", entity: "end_user" })
        const org = yield* call(master, "POST /organization/new", {
          organization_alias: "Beta",
          max_budget: 100
        })
        expect(org).toMatchObject({
          organization_alias: "Beta",
          max_budget: 100,
          litellm_budget_table: { max_budget: 100 }
        })
        expect(
          yield* refusal(call(master, "GET /organization/info", { organization_id: "nope" }))
        ).toMatchObject({
          _tag: "NotFound",
          entity: "organization"
        })
      })
    )
  )

  it.effect("spend/logs filters by key (plaintext or token_id), user, team and dates", () =>
    run(
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.UTC(2025, 2, 1, 10))
        const w = yield* world
        const ledger = yield* SpendLedger
        const settle = (token: string, keyId: string, team: string, user: string, request: string) =>
          Effect.gen(function* () {
            const hash = Token.hashToken(token)
            const hold = yield* ledger.hold({
              holdId: Ids.HoldId.make(`hold-${request}`),
              scopes: [
                { kind: "key", id: hash, label: Token.displayPrefix(token) },
                { kind: "team", id: Ids.TeamId.make(team) }
              ],
              amount: Money.make(2_000_000_000n),
              mode: "strict"
            })
            yield* ledger.settle(hold, Money.make(1_500_000_000n), {
              requestId: Ids.RequestId.make(request),
              keyId: Ids.KeyId.make(keyId),
              keyHash: hash,
              keyLabel: Token.displayPrefix(token),
              userId: Option.some(Ids.UserId.make(user)),
              teamId: Option.some(Ids.TeamId.make(team)),
              organizationId: Option.none(),
              endUser: Option.none(),
              model: "gpt-4o-mini",
              promptTokens: 10,
              completionTokens: 5,
              startedAt: yield* DateTime.now,
              status: "success"
            })
          })
        yield* settle(w.keys.alice.key, w.keys.alice.token_id, "research", "alice", "r1")
        yield* settle(w.keys.dave.key, w.keys.dave.token_id, "ops", "dave", "r2")

        const logs = (query: object) =>
          Effect.map(call(master, "GET /spend/logs", query), (rows) => listAt(rows))
        expect(yield* logs({})).toHaveLength(2)
        expect(yield* logs({ key: w.keys.alice.key })).toMatchObject([
          {
            request_id: "r1",
            token_id: w.keys.alice.token_id,
            key_name: Token.displayPrefix(w.keys.alice.key),
            user: "alice",
            team_id: "research",
            spend: 1.5,
            total_tokens: 15,
            startTime: "2025-03-01T10:00:00.000Z"
          }
        ])
        expect(yield* logs({ api_key: w.keys.dave.token_id })).toMatchObject([{ request_id: "r2" }])
        expect(yield* logs({ team_id: "ops" })).toMatchObject([{ request_id: "r2" }])
        expect(yield* logs({ user_id: "alice" })).toMatchObject([{ request_id: "r1" }])
        expect(yield* logs({ start_date: "2025-03-02" })).toEqual([])
        expect(yield* logs({ start_date: "2025-03-01", end_date: "2025-03-02" })).toHaveLength(2)
        expect(yield* logs({ limit: "1" })).toHaveLength(1)
        expect(yield* refusal(call(master, "GET /spend/logs", { key: Token.generateToken() }))).toMatchObject(
          { _tag: "NotFound", entity: "key" }
        )
        const team = yield* call(master, "GET /team/info", { team_id: "research" })
        expect(at(team, "team_info", "spend")).toBe(1.5)
        const aliceKey = listAt(team, "keys").find((key) => at(key, "token_id") === w.keys.alice.token_id)
        expect(at(aliceKey, "spend")).toBe(1.5)
      })
    )
  )
})

describe("no response but key/generate reveals a key", () => {
  it.effect("rendered responses and errors carry neither the plaintext nor the hash", () =>
    run(
      Effect.gen(function* () {
        const w = yield* world
        const tokens = [w.keys.alice.key, w.keys.carol.key, w.keys.dave.key]
        const secrets = tokens.flatMap((token) => [token, Token.hashToken(token)])
        const responses: Array<unknown> = []
        const record = (effect: Effect.Effect<unknown, { readonly message: string }, Admin.Admin>) =>
          Effect.flatMap(Effect.either(effect), (outcome) =>
            Effect.sync(() => {
              responses.push(
                outcome._tag === "Right"
                  ? outcome.right
                  : { error: outcome.left, message: outcome.left.message }
              )
            })
          )
        const { alice, carol, dave } = w.keys
        yield* record(call(master, "GET /key/info", { key: alice.key }))
        yield* record(call(w.alice, "GET /key/info", {}))
        yield* record(call(w.carol, "GET /key/info", { key: alice.key }))
        yield* record(
          call(master, "POST /key/update", { key: alice.key, max_budget: 3, key_alias: "renamed" })
        )
        yield* record(call(master, "POST /key/block", { key: carol.key }))
        yield* record(call(master, "POST /key/unblock", { key: carol.key }))
        yield* record(call(master, "GET /team/info", { team_id: "research" }))
        yield* record(call(master, "GET /team/info", { team_id: "ops" }))
        yield* record(call(master, "GET /user/info", { user_id: "alice" }))
        yield* record(call(master, "GET /spend/logs", {}))
        yield* record(call(w.alice, "GET /key/info", { key: dave.key }))
        yield* record(call(w.carol, "POST /key/block", { key: dave.key }))
        yield* record(call(master, "POST /key/update", { key: `${alice.key}x`, max_budget: 1 }))
        yield* record(call(master, "POST /key/delete", { keys: [dave.key, `${dave.key}x`] }))
        yield* record(call(master, "POST /key/delete", { keys: [dave.key] }))
        yield* record(call(master, "GET /key/info", { key: dave.key }))
        yield* record(call(master, "POST /team/delete", { team_ids: ["research"] }))
        expect(responses).toHaveLength(17)
        const errors = responses.filter((response) => at(response, "error") !== undefined)
        expect(errors.length).toBeGreaterThanOrEqual(5)
        const text = responses.map((response) => JSON.stringify(response)).join("\n")
        for (const secret of secrets) expect(text).not.toContain(secret)
      })
    )
  )
})
