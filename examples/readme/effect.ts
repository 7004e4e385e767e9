import { Effect } from "effect"
import { Admin, Api, BudgetPolicy, Money, Principal, TeamBudget } from "teambudget"

const { decodeRequest } = Api.Decode

export const program = Effect.gen(function* () {
  const admin = yield* Admin.Admin
  const policy = yield* BudgetPolicy.BudgetPolicy
  // Management requests are LiteLLM's JSON, decoded (and refused with a field path) as over HTTP.
  const newTeam = yield* decodeRequest(Api.TeamRequests.TeamNew)({ team_alias: "research", max_budget: 10 })
  const team = yield* admin.teamNew(Principal.master, newTeam)
  const newKey = yield* decodeRequest(Api.KeyRequests.KeyGenerate)({ team_id: team.teamId })
  const { token } = yield* admin.keyGenerate(Principal.master, newKey)
  // Hold the worst case on every scope before calling the model ...
  const admission = yield* policy.authorize({
    apiKey: token,
    model: "gpt-4o-mini",
    promptTokens: 25,
    maxOutputTokens: 500
  })
  // ... then charge what the response's `usage` reports.
  const settlement = yield* policy.settle(admission, { promptTokens: 25, completionTokens: 180 })
  return Money.toUsd(settlement.cost) // 0.00011175: exact, in nano-dollars underneath
})

export const main = () => Effect.runPromise(program.pipe(Effect.provide(TeamBudget.layerMemory())))
