/**
 * The request schemas of the management API: LiteLLM JSON in, typed requests out.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Either, Option, type Schema } from "effect"
import * as fc from "fast-check"
import {
  Api,
  Budget,
  type InvalidRequest,
  Ids,
  Limits,
  Money,
  Spend,
  TeamMembership,
  Token
} from "../src/index.js"

const { BudgetRequests, CustomerRequests, Decode, KeyRequests, OrganizationRequests, Render } = Api
const { SpendRequests, TeamRequests, UserRequests } = Api

/** A decoder of any request, for tables that mix request types. */
type Decoder = (input: unknown) => Effect.Effect<object, InvalidRequest>

const decoder = <A extends object, I>(schema: Schema.Schema<A, I>): Decoder => Decode.decodeRequest(schema)

const outcome = <A>(effect: Effect.Effect<A, InvalidRequest>) => Effect.runSync(Effect.either(effect))

const decodedBy = <A>(decode: (input: unknown) => Effect.Effect<A, InvalidRequest>, input: unknown): A => {
  const result = outcome(decode(input))
  if (Either.isLeft(result))
    throw new Error(`expected ${JSON.stringify(input)} to decode: ${result.left.message}`)
  return result.right
}

const refusedBy = <A>(decode: (input: unknown) => Effect.Effect<A, InvalidRequest>, input: unknown) => {
  const result = outcome(decode(input))
  if (Either.isRight(result)) throw new Error(`expected ${JSON.stringify(input)} to be refused`)
  return result.left
}

const decoded = <A, I>(schema: Schema.Schema<A, I>, input: unknown): A =>
  decodedBy(Decode.decodeRequest(schema), input)

const refused = <A, I>(schema: Schema.Schema<A, I>, input: unknown): InvalidRequest =>
  refusedBy(Decode.decodeRequest(schema), input)

const usd = (value: number) => {
  const money = Money.fromUsd(value)
  if (money === undefined) throw new Error("bad amount")
  return money
}

const fieldOf = (value: object, name: string): unknown =>
  Object.entries(value).find(([key]) => key === name)?.[1]

const hasField = (value: object, name: string): boolean => Object.keys(value).includes(name)

describe("create requests", () => {
  it("decodes /team/new into domain types", () => {
    const request = decoded(TeamRequests.TeamNew, {
      team_alias: "research",
      max_budget: 1000,
      budget_duration: "30d",
      tpm_limit: 1000,
      models: ["gpt-4o-mini"],
      metadata: { owner: "lab" }
    })
    expect(request.teamAlias).toBe("research")
    expect(request.teamId).toEqual(Option.none())
    expect(request.maxBudget).toEqual(Option.some(1_000_000_000_000n))
    expect(request.budgetDuration).toEqual(Option.some({ count: 30, unit: "d" }))
    expect(request.tpmLimit).toEqual(Option.some(1000))
    expect(request.rpmLimit).toEqual(Option.none())
    expect(request.models).toEqual(["gpt-4o-mini"])
    expect(request.metadata).toEqual({ owner: "lab" })
    expect(request.blocked).toBe(false)
  })

  it("reads an absent and a null optional field the same way: none", () => {
    const schemas = [
      [decoder(TeamRequests.TeamNew), { team_alias: "t" }],
      [decoder(KeyRequests.KeyGenerate), {}],
      [decoder(UserRequests.UserNew), {}],
      [decoder(OrganizationRequests.OrganizationNew), { organization_alias: "o" }],
      [decoder(CustomerRequests.CustomerNew), { user_id: "c" }]
    ] as const
    for (const [schema, base] of schemas) {
      const fields = ["max_budget", "soft_budget", "budget_duration", "tpm_limit", "rpm_limit", "blocked"]
      for (const field of fields) {
        const absent = decodedBy(schema, base)
        const cleared = decodedBy(schema, { ...base, [field]: null })
        expect(cleared).toEqual(absent)
      }
    }
  })

  it("gives defaults for absent or null flags and roles", () => {
    expect(decoded(UserRequests.UserNew, { user_role: null, blocked: null })).toMatchObject({
      userRole: "internal_user",
      blocked: false
    })
    expect(
      decoded(TeamRequests.TeamMemberAdd, { team_id: "t", member: { user_id: "a", role: null } }).members
    ).toEqual([{ userId: "a", role: "user", userEmail: Option.none() }])
  })

  it("takes member as one object or a list, and reports a bad member at its path", () => {
    const one = decoded(TeamRequests.TeamMemberAdd, { team_id: "t", member: { user_id: "alice" } })
    expect(one.members).toEqual([{ userId: "alice", role: "user", userEmail: Option.none() }])
    const many = decoded(TeamRequests.TeamMemberAdd, {
      team_id: "t",
      member: [{ user_id: "alice", role: "admin" }, { user_id: "bob" }],
      max_budget_in_team: 50
    })
    expect(many.members.map((member) => member.role)).toEqual(["admin", "user"])
    expect(many.maxBudgetInTeam).toEqual(Option.some(usd(50)))

    expect(
      refused(TeamRequests.TeamMemberAdd, { team_id: "t", member: [{ user_id: "a" }, { user_id: 7 }] }).path
    ).toBe("member.1.user_id")
    expect(refused(TeamRequests.TeamMemberAdd, { team_id: "t", member: [{ user_id: 7 }] }).path).toBe(
      "member.0.user_id"
    )
    expect(refused(TeamRequests.TeamMemberAdd, { team_id: "t", member: { user_id: 7 } }).path).toBe(
      "member.user_id"
    )
    const role = refused(TeamRequests.TeamMemberAdd, {
      team_id: "t",
      member: { user_id: "a", role: "owner" }
    })
    expect(role).toMatchObject({ path: "member.role", detail: 'must be "admin" or "user"' })
    expect(refused(TeamRequests.TeamMemberAdd, { team_id: "t", member: [] }).path).toBe("member")
    expect(
      refused(TeamRequests.TeamMemberAdd, { team_id: "t", member: { user_id: "a", nick: "x" } }).path
    ).toBe("member.nick")
  })
})

/** Every optional field of every update request: [schema, base body, field, a valid value, decoded name]. */
const nullable: ReadonlyArray<readonly [Decoder, object, string, unknown, string]> = [
  ...(
    [
      [decoder(TeamRequests.TeamUpdate), { team_id: "t" }],
      [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }],
      [decoder(UserRequests.UserUpdate), { user_id: "u" }],
      [decoder(OrganizationRequests.OrganizationUpdate), { organization_id: "o" }],
      [decoder(CustomerRequests.CustomerUpdate), { user_id: "c" }],
      [decoder(BudgetRequests.GlobalBudgetUpdate), {}]
    ] as const
  ).flatMap(([schema, base]) =>
    (
      [
        ["max_budget", 12.5, "maxBudget"],
        ["soft_budget", 10, "softBudget"],
        ["budget_duration", "1mo", "budgetDuration"],
        ["tpm_limit", 1000, "tpmLimit"],
        ["rpm_limit", 60, "rpmLimit"],
        ["max_parallel_requests", 4, "maxParallelRequests"]
      ] as const
    ).map(([field, value, name]) => [schema, base, field, value, name] as const)
  ),
  [decoder(TeamRequests.TeamUpdate), { team_id: "t" }, "organization_id", "acme", "organizationId"],
  [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }, "key_alias", "ci", "keyAlias"],
  [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }, "user_id", "alice", "userId"],
  [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }, "team_id", "research", "teamId"],
  [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }, "duration", "30d", "duration"],
  [decoder(UserRequests.UserUpdate), { user_id: "u" }, "user_email", "a@example.com", "userEmail"],
  [
    decoder(TeamRequests.TeamMemberUpdate),
    { team_id: "t", user_id: "u" },
    "max_budget_in_team",
    50,
    "maxBudget"
  ],
  [
    decoder(TeamRequests.TeamMemberUpdate),
    { team_id: "t", user_id: "u" },
    "budget_duration",
    "7d",
    "budgetDuration"
  ],
  [decoder(TeamRequests.TeamMemberUpdate), { team_id: "t", user_id: "u" }, "tpm_limit", 100, "tpmLimit"],
  [decoder(TeamRequests.TeamMemberUpdate), { team_id: "t", user_id: "u" }, "rpm_limit", 10, "rpmLimit"]
]

/** Optional update fields that cannot be cleared: [schema, base body, field, a valid value]. */
const nonNullable: ReadonlyArray<readonly [Decoder, object, string, unknown]> = [
  [decoder(TeamRequests.TeamUpdate), { team_id: "t" }, "team_alias", "renamed"],
  [decoder(TeamRequests.TeamUpdate), { team_id: "t" }, "blocked", true],
  [decoder(KeyRequests.KeyUpdate), { key: "sk-test-key" }, "blocked", true],
  [decoder(UserRequests.UserUpdate), { user_id: "u" }, "user_role", "proxy_admin"],
  [decoder(UserRequests.UserUpdate), { user_id: "u" }, "blocked", true],
  [decoder(OrganizationRequests.OrganizationUpdate), { organization_id: "o" }, "organization_alias", "acme"],
  [decoder(OrganizationRequests.OrganizationUpdate), { organization_id: "o" }, "blocked", false],
  [decoder(CustomerRequests.CustomerUpdate), { user_id: "c" }, "blocked", true],
  [decoder(TeamRequests.TeamMemberUpdate), { team_id: "t", user_id: "u" }, "role", "admin"]
]

describe("update requests (SPEC 4)", () => {
  it("absent leaves a field out, null clears it, a value sets it", () => {
    expect(nullable.length).toBeGreaterThan(40)
    for (const [schema, base, field, value, name] of nullable) {
      expect(hasField(decodedBy(schema, base), name), `${field} absent`).toBe(false)
      expect(fieldOf(decodedBy(schema, { ...base, [field]: null }), name), `${field}: null`).toEqual(
        Option.none()
      )
      const set = fieldOf(decodedBy(schema, { ...base, [field]: value }), name)
      expect(Option.isOption(set) && Option.isSome(set), `${field}: value`).toBe(true)
    }
  })

  it("refuses null where a field cannot be cleared, naming the field", () => {
    for (const [schema, base, field, value] of nonNullable) {
      const name = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
      expect(hasField(decodedBy(schema, base), name)).toBe(false)
      expect(fieldOf(decodedBy(schema, { ...base, [field]: value }), name)).toEqual(value)
      expect(refusedBy(schema, { ...base, [field]: null }).path).toBe(field)
    }
  })

  it("refuses undefined: a field is either sent or not", () => {
    expect(refused(TeamRequests.TeamUpdate, { team_id: "t", max_budget: undefined }).path).toBe("max_budget")
  })

  it("clears models and metadata to their empty forms with null", () => {
    const request = decoded(TeamRequests.TeamUpdate, { team_id: "t", models: null, metadata: null })
    expect(request.models).toEqual([])
    expect(request.metadata).toEqual({})
  })

  it("maps max_budget_in_team: null to clearing the member's cap", () => {
    const request = decoded(TeamRequests.TeamMemberUpdate, {
      team_id: "research",
      user_id: "alice",
      max_budget_in_team: null
    })
    expect(request).toEqual({ teamId: "research", userId: "alice", maxBudget: Option.none() })
  })
})

describe("invalid values", () => {
  const cases: ReadonlyArray<readonly [string, Decoder, object, string, string?]> = [
    [
      "negative money",
      decoder(TeamRequests.TeamUpdate),
      { team_id: "t", max_budget: -1 },
      "max_budget",
      "must not be negative"
    ],
    [
      "money as the string NaN",
      decoder(TeamRequests.TeamUpdate),
      { team_id: "t", max_budget: "NaN" },
      "max_budget"
    ],
    ["money NaN", decoder(TeamRequests.TeamNew), { team_alias: "t", max_budget: Number.NaN }, "max_budget"],
    [
      "money Infinity",
      decoder(KeyRequests.KeyGenerate),
      { max_budget: Number.POSITIVE_INFINITY },
      "max_budget"
    ],
    ["money too large", decoder(UserRequests.UserNew), { max_budget: 1e12 }, "max_budget"],
    [
      "a number as a string",
      decoder(TeamRequests.TeamUpdate),
      { team_id: "t", tpm_limit: "100" },
      "tpm_limit"
    ],
    [
      "a fractional limit",
      decoder(KeyRequests.KeyUpdate),
      { key: "sk-x", rpm_limit: 1.5 },
      "rpm_limit",
      "must be a whole number"
    ],
    [
      "an unknown duration",
      decoder(TeamRequests.TeamUpdate),
      { team_id: "t", budget_duration: "banana" },
      "budget_duration",
      'expected a duration such as "30s", "10m", "1h", "7d" or "1mo", got "banana"'
    ],
    [
      "a duration in weeks",
      decoder(CustomerRequests.CustomerNew),
      { user_id: "c", budget_duration: "1w" },
      "budget_duration"
    ],
    ["an unknown field", decoder(TeamRequests.TeamUpdate), { team_id: "t", max_budgets: 5 }, "max_budgets"],
    [
      "an unknown field on create",
      decoder(OrganizationRequests.OrganizationNew),
      { organization_alias: "o", x: 1 },
      "x"
    ],
    ["a wrong type", decoder(TeamRequests.TeamNew), { team_alias: "t", models: "gpt-4o" }, "models"],
    [
      "a wrong element type",
      decoder(TeamRequests.TeamNew),
      { team_alias: "t", models: ["a", 3] },
      "models.1"
    ],
    ["team_alias null", decoder(TeamRequests.TeamUpdate), { team_id: "t", team_alias: null }, "team_alias"],
    [
      "team_alias empty",
      decoder(TeamRequests.TeamNew),
      { team_alias: "" },
      "team_alias",
      "must not be empty"
    ],
    ["a missing team_alias", decoder(TeamRequests.TeamNew), {}, "team_alias", "is required"],
    ["a missing team_id", decoder(TeamRequests.TeamUpdate), { max_budget: 1 }, "team_id", "is required"],
    ["an id with a control character", decoder(TeamRequests.TeamInfo), { team_id: "a\nb" }, "team_id"],
    ["metadata not an object", decoder(TeamRequests.TeamNew), { team_alias: "t", metadata: [1] }, "metadata"],
    ["blocked as a string", decoder(KeyRequests.KeyUpdate), { key: "sk-x", blocked: "true" }, "blocked"],
    [
      "an unknown user role",
      decoder(UserRequests.UserUpdate),
      { user_id: "u", user_role: "root" },
      "user_role"
    ],
    ["an empty key", decoder(KeyRequests.KeyBlock), { key: "" }, "key"],
    ["no keys to delete", decoder(KeyRequests.KeyDelete), { keys: [] }, "keys"],
    ["no teams to delete", decoder(TeamRequests.TeamDelete), { team_ids: [] }, "team_ids"],
    ["a bad date", decoder(SpendRequests.SpendLogs), { start_date: "yesterday" }, "start_date"],
    ["key and api_key", decoder(SpendRequests.SpendLogs), { key: "sk-a", api_key: "sk-b" }, "api_key"],
    ["a bad e-mail", decoder(UserRequests.UserNew), { user_email: "nobody" }, "user_email"]
  ]

  for (const [name, decode, body, path, detail] of cases) {
    it(`refuses ${name} with the field's path`, () => {
      const error = refusedBy(decode, body)
      expect(error._tag).toBe("InvalidRequest")
      expect(error.path).toBe(path)
      expect(error.detail.length).toBeGreaterThan(0)
      if (detail !== undefined) expect(error.detail).toBe(detail)
      expect(error.message).toContain(path)
    })
  }

  it("refuses a body that is not a JSON object", () => {
    for (const body of [null, [], "team", 3]) {
      expect(refused(TeamRequests.TeamNew, body)).toMatchObject({
        path: "",
        detail: "the request must be a JSON object"
      })
    }
  })

  type Kind = "money" | "count" | "duration" | "boolean" | "string"
  const kinds: Record<string, Kind> = {
    max_budget: "money",
    soft_budget: "money",
    tpm_limit: "count",
    rpm_limit: "count",
    max_parallel_requests: "count",
    budget_duration: "duration",
    blocked: "boolean",
    team_alias: "string"
  }
  const notNumber = fc.oneof(
    fc.string(),
    fc.boolean(),
    fc.constant("NaN"),
    fc.array(fc.integer(), { maxLength: 2 }),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 })
  )
  const bad: Record<Kind, fc.Arbitrary<unknown>> = {
    money: fc.oneof(
      notNumber,
      fc.double({ max: -1e-9, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e9 + 1)
    ),
    count: fc.oneof(
      notNumber,
      fc.integer({ max: -1 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
      fc.constant(2 ** 31)
    ),
    duration: fc.oneof(
      fc.string().filter((s) => !/^[1-9]\d{0,5}(s|m|h|d|mo)$/.test(s)),
      fc.integer(),
      fc.boolean()
    ),
    boolean: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    string: fc.oneof(fc.integer(), fc.boolean(), fc.constant(""), fc.constant(null))
  }
  const updates = [
    [
      decoder(TeamRequests.TeamUpdate),
      { team_id: "t" },
      ["max_budget", "soft_budget", "tpm_limit", "budget_duration", "blocked", "team_alias"]
    ],
    [
      decoder(KeyRequests.KeyUpdate),
      { key: "sk-x" },
      ["max_budget", "rpm_limit", "max_parallel_requests", "budget_duration", "blocked"]
    ],
    [
      decoder(UserRequests.UserUpdate),
      { user_id: "u" },
      ["max_budget", "tpm_limit", "budget_duration", "blocked"]
    ],
    [
      decoder(CustomerRequests.CustomerUpdate),
      { user_id: "c" },
      ["max_budget", "rpm_limit", "budget_duration", "blocked"]
    ],
    [
      decoder(TeamRequests.TeamNew),
      { team_alias: "t" },
      ["max_budget", "tpm_limit", "budget_duration", "team_alias"]
    ]
  ] as const

  it("refuses generated bad values at the bad field (property)", () => {
    const arbitrary = fc
      .constantFrom(...updates)
      .chain(([schema, base, fields]) =>
        fc
          .constantFrom(...fields)
          .chain((field) =>
            bad[kinds[field] ?? "string"].map((value) => [schema, base, field, value] as const)
          )
      )
    fc.assert(
      fc.property(arbitrary, ([schema, base, field, value]) => {
        const error = refusedBy(schema, { ...base, [field]: value })
        expect(error.path).toBe(field)
      }),
      { numRuns: 500 }
    )
  })

  it("refuses generated unknown fields by name (property)", () => {
    const known = new Set([
      "team_id",
      "team_alias",
      "organization_id",
      "models",
      "metadata",
      "blocked",
      ...Object.keys(kinds)
    ])
    const unknownName = fc
      .stringMatching(/^[a-z][a-z_]{0,19}$/)
      .filter((name) => !known.has(name) && name !== "__proto__" && name !== "constructor")
    fc.assert(
      fc.property(unknownName, fc.jsonValue(), (name, value) => {
        expect(refused(TeamRequests.TeamUpdate, { team_id: "t", [name]: value }).path).toBe(name)
      }),
      { numRuns: 300 }
    )
  })
})

describe("key references", () => {
  it("hashes a plaintext key at once and names it by its display prefix", () => {
    const token = Token.generateToken()
    const request = decoded(KeyRequests.KeyBlock, { key: token })
    expect(request.key).toEqual({
      _tag: "Token",
      hash: Token.hashToken(token),
      label: Token.displayPrefix(token)
    })
    expect(JSON.stringify(request)).not.toContain(token)
  })

  it("reads anything else as a token_id", () => {
    expect(decoded(KeyRequests.KeyInfo, { key: "3f0c9a" }).key).toEqual(
      Option.some({ _tag: "KeyId", keyId: "3f0c9a" })
    )
    expect(decoded(KeyRequests.KeyInfo, {}).key).toEqual(Option.none())
  })

  it("accepts key or api_key on /spend/logs", () => {
    const byApiKey = decoded(SpendRequests.SpendLogs, { api_key: "id-1", start_date: "2025-01-01" })
    expect(byApiKey.apiKey).toEqual({ _tag: "KeyId", keyId: "id-1" })
    expect(byApiKey.startDate).toEqual(DateTime.unsafeMake("2025-01-01T00:00:00Z"))
    expect(decoded(SpendRequests.SpendLogs, { limit: "10" }).limit).toBe(10)
  })
})

describe("renderers", () => {
  const membership = (budget: Option.Option<Budget.Budget>) =>
    new TeamMembership.TeamMembership({
      teamId: Ids.TeamId.make("research"),
      userId: Ids.UserId.make("alice"),
      role: "user",
      spend: Spend.empty,
      budget
    })

  it("shows a member without a budget with budget_id and litellm_budget_table null", () => {
    expect(Render.membership(membership(Option.none()))).toMatchObject({
      team_id: "research",
      user_id: "alice",
      spend: 0,
      budget_id: null,
      litellm_budget_table: null
    })
  })

  it("shows a member's budget in USD", () => {
    const budget = new Budget.Budget({
      budgetId: Ids.BudgetId.make("b1"),
      limits: Limits.patch(Limits.none, { maxBudget: Option.some(usd(50)) })
    })
    expect(Render.membership(membership(Option.some(budget)))).toMatchObject({
      budget_id: "b1",
      litellm_budget_table: { budget_id: "b1", max_budget: 50, budget_duration: null, tpm_limit: null }
    })
  })
})
