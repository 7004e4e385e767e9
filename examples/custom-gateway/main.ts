/**
 * A gateway composed from the SDK's services: its own prices, its own project scope,
 * the SDK's keys, teams and budget policy, and no HTTP at all.
 *
 *   node --import tsx examples/custom-gateway/main.ts
 */
import { Effect, Either, Layer } from "effect"
import {
  Admin,
  BudgetPolicy,
  KeyAuth,
  Money,
  Operations,
  Principal,
  SqlStore,
  TokenEstimator
} from "../../src/index.js"
import * as Gateway from "./Gateway.js"
import * as PriceSheet from "./PriceSheet.js"
import * as ProjectBudgets from "./ProjectBudgets.js"

/** The SDK's services with the gateway's own pricing in place of the default one. */
export const services = (sheet: PriceSheet.Sheet, databaseUrl = "memory:") =>
  Layer.mergeAll(BudgetPolicy.layer().pipe(Layer.provideMerge(KeyAuth.layer())), Admin.Admin.Default).pipe(
    Layer.provideMerge(Layer.merge(PriceSheet.layer(sheet), TokenEstimator.layer)),
    Layer.provideMerge(SqlStore.layerFromUrl(databaseUrl))
  )

/** The whole gateway: the SDK's services, the project budgets, a model. */
export const gateway = (options: {
  readonly sheet: PriceSheet.Sheet
  readonly projects: Readonly<Record<string, number>>
  readonly model: Layer.Layer<Gateway.ChatModel>
  readonly databaseUrl?: string
}) =>
  Gateway.layer.pipe(
    Layer.provideMerge(Layer.merge(ProjectBudgets.layer(options.projects), options.model)),
    Layer.provideMerge(services(options.sheet, options.databaseUrl))
  )

const demo = Effect.gen(function* () {
  const admin = (name: string, input: unknown) => Operations.invoke(name, Principal.master, input)
  yield* admin("team/new", { team_id: "platform", team_alias: "platform", max_budget: 1 })
  const generated = yield* admin("key/generate", { team_id: "platform", key_alias: "batch-job" })
  const apiKey =
    typeof generated === "object" && generated !== null && "key" in generated ? String(generated.key) : ""

  const gateway = yield* Gateway.Gateway
  const projects = yield* ProjectBudgets.ProjectBudgets
  const body = {
    model: "house-small",
    max_tokens: 200,
    messages: [{ role: "user", content: "Summarise the report." }]
  }
  for (const project of ["summaries", "summaries", "experiments"]) {
    const result = yield* Effect.either(gateway.complete({ apiKey, project, body }))
    console.log(
      Either.match(result, {
        onRight: (done) => `${project}: answered, charged ${Money.format(done.cost)}`,
        onLeft: (error) => `${project}: refused (${error._tag}) ${error.message}`
      })
    )
  }
  for (const project of ["summaries", "experiments"]) {
    const spend = yield* projects.spendOf(project)
    console.log(`project ${project}: spent ${Money.format(spend.spent)} of ${Money.format(spend.maxBudget)}`)
  }
})

if (import.meta.url === `file://${process.argv[1]}`) {
  await Effect.runPromise(
    demo.pipe(
      Effect.provide(
        gateway({
          sheet: { "house-small": { inputPer1k: 500, outputPer1k: 1500, maxOutputTokens: 4096 } },
          // "experiments" cannot take one call's worst case (200 output tokens, about $0.0000003).
          projects: { summaries: 0.01, experiments: 0.0000002 },
          model: Gateway.echoModel
        })
      )
    )
  )
}
