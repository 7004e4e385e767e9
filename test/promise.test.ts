import { describe, expect, it } from "vitest"
import { Api, BudgetExceeded, InvalidRequest, Money } from "../src/index.js"
import { createTeamBudget } from "../src/promise.js"
import { testPricing } from "./support/runtime.js"

describe("Promise facade", () => {
  it("offers every management operation as an async function", async () => {
    const budget = await createTeamBudget()
    expect(Object.keys(budget.admin).sort()).toEqual(Object.keys(Api.Routes.byName).sort())
    await budget.close()
  })

  it("authorizes, settles and rejects with the same tagged error classes", async () => {
    const budget = await createTeamBudget({ pricing: testPricing })
    try {
      const team = await budget.admin.teamNew({ team_alias: "research", max_budget: 40 })
      const teamId = team.team_id
      const { key: apiKey } = await budget.admin.keyGenerate({ team_id: teamId })

      // "big" costs $0.01 a token: $20 a call, so two fit in $40.
      for (let i = 0; i < 2; i++) {
        const admission = await budget.authorize({
          apiKey,
          model: "big",
          promptTokens: 1000,
          maxOutputTokens: 1000
        })
        const settlement = await budget.settle(admission, { promptTokens: 1000, completionTokens: 1000 })
        expect(settlement.cost).toBe(Money.fromUsd(20))
      }
      const refusal = await budget
        .authorize({ apiKey, model: "big", promptTokens: 1000, maxOutputTokens: 1000 })
        .then(
          () => undefined,
          (error: unknown) => error
        )
      expect(refusal).toBeInstanceOf(BudgetExceeded)
      expect(refusal).toMatchObject({ _tag: "BudgetExceeded", scope: "team", id: teamId })

      const info = await budget.admin.teamInfo({ team_id: teamId })
      expect(info.team_info.spend).toBe(40)

      const invalid = await budget.admin.teamUpdate({ team_id: teamId, max_budget: -1 }).then(
        () => undefined,
        (error: unknown) => error
      )
      expect(invalid).toBeInstanceOf(InvalidRequest)
      expect(invalid).toMatchObject({ path: "max_budget" })
      const after = await budget.admin.teamInfo({ team_id: teamId })
      expect(after.team_info.max_budget).toBe(40)
    } finally {
      await budget.close()
    }
  })
})
