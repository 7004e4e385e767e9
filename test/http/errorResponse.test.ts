import { Cause, Option } from "effect"
import { describe, expect, it } from "vitest"
import * as ErrorResponse from "../../src/http/ErrorResponse.js"
import { BudgetExceeded, NotFound, RateLimited } from "../../src/index.js"
import { usd } from "../support/fixtures.js"

describe("ErrorResponse", () => {
  it("renders typed errors with their SPEC 9 status and body", async () => {
    const notFound = ErrorResponse.fromError(new NotFound({ entity: "team", id: "t1" }))
    expect(notFound.status).toBe(404)
    expect(notFound.headers.get("content-type")).toContain("application/json")
    expect(await notFound.json()).toEqual({
      error: { message: "No team t1 exists.", type: "not_found_error", code: "team_not_found", param: null }
    })
    const refused = ErrorResponse.fromError(
      new BudgetExceeded({
        scope: "team",
        id: "t1",
        spend: usd(10),
        held: usd(0),
        maxBudget: usd(10),
        requested: usd(1),
        resetAt: Option.none()
      })
    )
    expect(refused.status).toBe(402)
    expect(await refused.json()).toMatchObject({
      error: { type: "budget_exceeded", code: "team_budget_exceeded" }
    })
  })

  it("adds Retry-After to a rate limit", () => {
    const limited = ErrorResponse.fromError(
      new RateLimited({ scope: "key", id: "k", limitType: "requests", limit: 10, retryAfterSeconds: 7 })
    )
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("7")
  })

  it("answers 500 to a defect or an interruption, and never shows what a defect says", async () => {
    const response = ErrorResponse.fromCause(Cause.die(new Error("boom sk-secret-token")))
    expect(response.status).toBe(500)
    const text = await response.text()
    expect(text).not.toContain("sk-secret")
    expect(JSON.parse(text)).toMatchObject({ error: { type: "internal_error", param: null } })
    expect(ErrorResponse.fromCause(Cause.empty).status).toBe(500)
  })
})
