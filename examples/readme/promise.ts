import { BudgetExceeded } from "teambudget"
import { createTeamBudget } from "teambudget/promise"

export const main = async () => {
  const budget = await createTeamBudget({ databaseUrl: "memory:" })
  try {
    // The management operations take and return LiteLLM's JSON, as the HTTP API does.
    const team = await budget.admin.teamNew({ team_alias: "research", max_budget: 0.0002 })
    const { key } = await budget.admin.keyGenerate({ team_id: team.team_id })
    const request = { apiKey: key, model: "gpt-4o-mini", promptTokens: 25, maxOutputTokens: 200 }

    const admission = await budget.authorize(request) // holds up to $0.00012375
    await budget.settle(admission, { promptTokens: 25, completionTokens: 180 }) // charges $0.00011175

    // The team has $0.00008825 left: the next worst case does not fit.
    return await budget.authorize(request).then(
      () => "admitted",
      (error: unknown) => (error instanceof BudgetExceeded ? `refused by ${error.scope}` : "failed")
    )
  } finally {
    await budget.close()
  }
}
