/**
 * Property: an update that carries one invalid field, among any number of valid
 * changes, is refused with 400 naming exactly that field, and a read-back shows that
 * nothing at all was written (SPEC 4), over real HTTP.
 */
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BudgetDuration } from "../../src/index.js"
import { at, type Client, make as makeClient } from "../support/httpClient.js"
import { type Harness, start } from "../support/httpHarness.js"

const negativeMoney = fc.double({ max: -1e-9, noNaN: true, noDefaultInfinity: true })
const tooMuchMoney = fc.double({ min: 1e9 + 1, noNaN: true, noDefaultInfinity: true })
const notANumber = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.array(fc.nat(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 })
)
const badMoney = fc.oneof(negativeMoney, tooMuchMoney, notANumber)
const badCount = fc.oneof(
  fc.integer({ max: -1 }),
  fc.double({ min: 2_147_483_648, max: 1e15, noNaN: true }).map(Math.floor),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  notANumber
)
const badDuration = fc.oneof(
  fc.string().filter((text) => BudgetDuration.parse(text) === undefined),
  fc.constantFrom("0d", "1w", "1y", "30", "d", "1.5h", " 1h", "1h ", "1M", "-1d"),
  fc.integer(),
  fc.boolean()
)
const badAlias = fc.oneof(
  fc.constant(""),
  fc.constant(null),
  fc.integer(),
  fc.string({ minLength: 1 }).map((text) => `${text}\u0000`)
)

const validMoney = fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(null))
const validCount = fc.oneof(fc.nat({ max: 1_000_000 }), fc.constant(null))
const validDuration = fc.oneof(fc.constantFrom("30s", "10m", "1h", "7d", "1mo"), fc.constant(null))

/** A body with some valid changes and one invalid field, and that field's name. */
const withOneBadField = (
  fixed: Record<string, unknown>,
  valid: Record<string, fc.Arbitrary<unknown>>,
  bad: Record<string, fc.Arbitrary<unknown>>
) => {
  const known = new Set([...Object.keys(fixed), ...Object.keys(valid), ...Object.keys(bad)])
  const unknownField = fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((name) => !known.has(name) && name !== "__proto__")
    .chain((name) => fc.tuple(fc.constant(name), fc.jsonValue({ maxDepth: 1 })))
  const badField = fc.oneof(
    ...Object.entries(bad).map(([name, values]) => fc.tuple(fc.constant(name), values)),
    unknownField
  )
  return fc.tuple(fc.record(valid, { requiredKeys: [] }), badField).map(([changes, [field, value]]) => ({
    field,
    body: { ...fixed, ...changes, [field]: value }
  }))
}

describe("management writes over HTTP (property)", () => {
  let harness: Harness
  let client: Client
  let key = ""

  const snapshot = () =>
    Promise.all([
      client.admin("GET", "/team/info?team_id=prop").then((r) => r.text),
      client.admin("GET", `/key/info?key=${encodeURIComponent(key)}`).then((r) => r.text),
      client.admin("GET", "/user/info?user_id=pat").then((r) => r.text)
    ])

  const refusedAndUnchanged = (path: string, cases: fc.Arbitrary<{ field: string; body: unknown }>) =>
    fc.assert(
      fc.asyncProperty(cases, async ({ field, body }) => {
        const before = await snapshot()
        const reply = await client.admin("POST", path, body)
        expect(reply.status).toBe(400)
        // The field itself, or a path inside it (`models.0`).
        const param = String(at(reply.json, "error", "param"))
        expect(param === field || param.startsWith(`${field}.`) ? field : param).toBe(field)
        expect(await snapshot()).toEqual(before)
      }),
      { numRuns: 100 }
    )

  beforeAll(async () => {
    harness = await start("hono")
    client = makeClient(harness.url)
    await client.admin("POST", "/team/new", {
      team_id: "prop",
      team_alias: "Prop",
      max_budget: 100,
      budget_duration: "30d"
    })
    await client.admin("POST", "/team/member_add", {
      team_id: "prop",
      member: { user_id: "pat" },
      max_budget_in_team: 5
    })
    key = await client.generateKey({ team_id: "prop", user_id: "pat", max_budget: 5 })
  })
  afterAll(async () => {
    await harness.close()
  })

  it("team/update", () =>
    refusedAndUnchanged(
      "/team/update",
      withOneBadField(
        { team_id: "prop" },
        {
          team_alias: fc.constantFrom("Renamed", "Prop two"),
          max_budget: validMoney,
          budget_duration: validDuration,
          tpm_limit: validCount,
          rpm_limit: validCount,
          models: fc.array(fc.constantFrom("small", "big"), { maxLength: 2 }),
          blocked: fc.boolean()
        },
        {
          team_alias: badAlias,
          max_budget: badMoney,
          soft_budget: badMoney,
          budget_duration: badDuration,
          tpm_limit: badCount,
          rpm_limit: badCount,
          max_parallel_requests: badCount,
          blocked: fc.oneof(fc.constant(null), fc.string(), fc.integer())
        }
      )
    ))

  it("team/member_update", () =>
    refusedAndUnchanged(
      "/team/member_update",
      withOneBadField(
        { team_id: "prop", user_id: "pat" },
        {
          role: fc.constantFrom("admin", "user"),
          max_budget_in_team: validMoney,
          budget_duration: validDuration,
          tpm_limit: validCount,
          rpm_limit: validCount
        },
        {
          role: fc.oneof(fc.constantFrom("owner", "ADMIN", ""), fc.constant(null), fc.integer()),
          max_budget_in_team: badMoney,
          budget_duration: badDuration,
          tpm_limit: badCount,
          rpm_limit: badCount
        }
      )
    ))

  it("key/update", () =>
    refusedAndUnchanged(
      "/key/update",
      withOneBadField(
        { key: "placeholder" },
        {
          max_budget: validMoney,
          budget_duration: validDuration,
          tpm_limit: validCount,
          key_alias: fc.oneof(fc.constantFrom("alias-a", "alias-b"), fc.constant(null)),
          models: fc.array(fc.constantFrom("small", "big"), { maxLength: 2 })
        },
        {
          max_budget: badMoney,
          budget_duration: badDuration,
          duration: badDuration,
          tpm_limit: badCount,
          key_alias: fc.oneof(fc.constant(""), fc.integer()),
          models: fc.oneof(fc.string(), fc.array(fc.integer(), { minLength: 1, maxLength: 2 }))
        }
      ).map(({ field, body }) => ({ field, body: { ...body, key } }))
    ))

  it("user/update", () =>
    refusedAndUnchanged(
      "/user/update",
      withOneBadField(
        { user_id: "pat" },
        { max_budget: validMoney, budget_duration: validDuration, rpm_limit: validCount },
        { max_budget: badMoney, budget_duration: badDuration, rpm_limit: badCount, tpm_limit: badCount }
      )
    ))
})
