/**
 * The custom gateway example: the SDK's services composed in Effect with the
 * gateway's own pricing, its own project scope and no HTTP. Each test builds a fresh
 * gateway (memory store) and drives it through its service.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer } from "effect"
import * as Gateway from "../../examples/custom-gateway/Gateway.js"
import { gateway } from "../../examples/custom-gateway/main.js"
import * as PriceSheet from "../../examples/custom-gateway/PriceSheet.js"
import { ProjectBudgets } from "../../examples/custom-gateway/ProjectBudgets.js"
import { Money, Operations, Principal, TokenEstimator, UpstreamFailed } from "../../src/index.js"

const SHEET: PriceSheet.Sheet = {
  "house-small": { inputPer1k: 500, outputPer1k: 1500, maxOutputTokens: 4096 }
}
const BODY = {
  model: "house-small",
  max_tokens: 200,
  messages: [{ role: "user", content: "Summarise the report." }]
}

const promptTokens = Either.getOrThrow(TokenEstimator.estimateBody(BODY)).promptTokens
/** What one call holds: its prompt and its whole `max_tokens`, at the sheet's prices. */
const worstCase = PriceSheet.costOf(
  SHEET["house-small"] ?? { inputPer1k: 0, outputPer1k: 0, maxOutputTokens: 0 },
  {
    promptTokens,
    completionTokens: 200
  }
)

/** A model that uses every token it was allowed, after yielding to the other calls. */
const fullModel = Layer.succeed(Gateway.ChatModel, {
  complete: () =>
    Effect.as(Effect.sleep("2 millis"), { text: "done", usage: { promptTokens, completionTokens: 200 } })
})

const failingModel = Layer.succeed(Gateway.ChatModel, {
  complete: () => Effect.fail(new UpstreamFailed({ status: 503, detail: "the model is down" }))
})

const admin = (name: string, input: unknown) => Operations.invoke(name, Principal.master, input)

const field = (value: unknown, ...path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>(
    (current, step) =>
      typeof current === "object" && current !== null ? Reflect.get(current, step) : undefined,
    value
  )

/** A team with `maxBudget` and a key in it. */
const teamKey = (maxBudget: number) =>
  Effect.gen(function* () {
    yield* admin("team/new", { team_id: "platform", team_alias: "platform", max_budget: maxBudget })
    const generated = yield* admin("key/generate", { team_id: "platform" })
    const key = field(generated, "key")
    if (typeof key !== "string") return yield* Effect.die("no key")
    return key
  })

const teamSpend = Effect.map(admin("team/info", { team_id: "platform" }), (info) => ({
  spend: field(info, "team_info", "spend"),
  held: field(info, "team_info", "held_spend")
}))

describe("the custom gateway example", () => {
  it.live("charges from its own price sheet, on the SDK's scopes and on the project alike", () =>
    Effect.gen(function* () {
      const apiKey = yield* teamKey(1)
      const done = yield* (yield* Gateway.Gateway).complete({ apiKey, project: "summaries", body: BODY })
      expect(done.cost).toBe(worstCase)
      expect(done.cost).toBe(Money.make(BigInt(Math.ceil((promptTokens * 500 + 200 * 1500) / 1000))))
      const project = yield* (yield* ProjectBudgets).spendOf("summaries")
      expect(project.spent).toBe(worstCase)
      expect(project.held).toBe(0n)
      expect((yield* teamSpend).spend).toBe(Money.toUsd(worstCase))
    }).pipe(Effect.provide(gateway({ sheet: SHEET, projects: { summaries: 1 }, model: fullModel })))
  )

  it.live("50 concurrent calls against a project that fits 10: exactly 10 answered, never over", () => {
    const projectBudget = Money.toUsd(Money.make(worstCase * 10n))
    return Effect.gen(function* () {
      const apiKey = yield* teamKey(1)
      const service = yield* Gateway.Gateway
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, () => service.complete({ apiKey, project: "batch", body: BODY })),
        Effect.either,
        { concurrency: "unbounded" }
      )
      const answered = results.filter(Either.isRight)
      const refused = results.flatMap((r) => (Either.isLeft(r) ? [r.left._tag] : []))
      expect(answered).toHaveLength(10)
      expect(refused).toEqual(Array.from({ length: 40 }, () => "ProjectBudgetExceeded"))
      const project = yield* (yield* ProjectBudgets).spendOf("batch")
      expect(project.spent).toBe(worstCase * 10n)
      expect(project.spent <= project.maxBudget).toBe(true)
      expect(project.held).toBe(0n)
      // The refused calls gave their SDK holds back: the team was charged for the 10 only.
      const team = yield* teamSpend
      expect(team.spend).toBe(Money.toUsd(Money.make(worstCase * 10n)))
      expect(team.held).toBe(0)
    }).pipe(Effect.provide(gateway({ sheet: SHEET, projects: { batch: projectBudget }, model: fullModel })))
  })

  it.live("the SDK's team budget binds first, and the project is never touched", () =>
    Effect.gen(function* () {
      const apiKey = yield* teamKey(Money.toUsd(worstCase) / 2)
      const failure = yield* Effect.flip(
        (yield* Gateway.Gateway).complete({ apiKey, project: "summaries", body: BODY })
      )
      expect(failure._tag).toBe("BudgetExceeded")
      const project = yield* (yield* ProjectBudgets).spendOf("summaries")
      expect([project.spent, project.held]).toEqual([0n, 0n])
    }).pipe(Effect.provide(gateway({ sheet: SHEET, projects: { summaries: 1 }, model: fullModel })))
  )

  it.live("a failed model call and an unknown project give back every hold", () =>
    Effect.gen(function* () {
      const apiKey = yield* teamKey(1)
      const service = yield* Gateway.Gateway
      const down = yield* Effect.flip(service.complete({ apiKey, project: "summaries", body: BODY }))
      expect(down._tag).toBe("UpstreamFailed")
      const unknown = yield* Effect.flip(service.complete({ apiKey, project: "nowhere", body: BODY }))
      expect(unknown._tag).toBe("UnknownProject")
      const project = yield* (yield* ProjectBudgets).spendOf("summaries")
      expect([project.spent, project.held]).toEqual([0n, 0n])
      expect(yield* teamSpend).toEqual({ spend: 0, held: 0 })
    }).pipe(Effect.provide(gateway({ sheet: SHEET, projects: { summaries: 1 }, model: failingModel })))
  )

  it.live("an interrupted call gives back its holds", () =>
    Effect.gen(function* () {
      const apiKey = yield* teamKey(1)
      const projects = yield* ProjectBudgets
      const fiber = yield* Effect.fork(
        (yield* Gateway.Gateway).complete({ apiKey, project: "summaries", body: BODY })
      )
      // Wait until the call holds on the project (the model never answers), then cancel it.
      yield* projects
        .spendOf("summaries")
        .pipe(Effect.repeat({ until: (spend) => spend.held > 0n }), Effect.timeout("5 seconds"))
      expect((yield* teamSpend).held).toBe(Money.toUsd(worstCase))
      yield* Fiber.interrupt(fiber)
      expect((yield* projects.spendOf("summaries")).held).toBe(0n)
      expect(yield* teamSpend).toEqual({ spend: 0, held: 0 })
    }).pipe(
      Effect.provide(
        gateway({
          sheet: SHEET,
          projects: { summaries: 1 },
          model: Layer.succeed(Gateway.ChatModel, { complete: () => Effect.never })
        })
      )
    )
  )
})
