import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, Tracer } from "effect"
import { BudgetPolicy, Metrics } from "../src/index.js"
import { limits, makeKey, makeTeam } from "./support/fixtures.js"
import { makeServices } from "./support/runtime.js"

const request = (apiKey: string) => ({ apiKey, model: "big", promptTokens: 1000, maxOutputTokens: 1000 })

/** A tracer that records span names and leaves the spans to Effect's own tracer. */
const recording = Effect.map(Effect.tracer, (builtIn) => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      names.push(name)
      return builtIn.span(name, parent, context, links, startTime, kind, options)
    },
    context: (f, fiber) => builtIn.context(f, fiber)
  })
  return { names, tracer }
})

describe("observability", () => {
  it.effect("a host that installs a tracer sees a span for every service operation on the request path", () =>
    Effect.gen(function* () {
      yield* makeTeam("traced", limits({ maxBudget: 100 }))
      const key = yield* makeKey({ team: "traced" })
      const policy = yield* BudgetPolicy.BudgetPolicy
      const { names, tracer } = yield* recording
      yield* Effect.withTracer(
        Effect.flatMap(policy.authorize(request(key)), (admission) =>
          policy.settle(admission, { promptTokens: 1000, completionTokens: 10 })
        ),
        tracer
      )
      expect(names).toEqual(
        expect.arrayContaining([
          "BudgetPolicy.authorize",
          "KeyAuth.authenticate",
          "SpendLedger.hold",
          "BudgetPolicy.settle",
          "SpendLedger.settle"
        ])
      )
    }).pipe(Effect.provide(makeServices()))
  )

  it.effect("admissions, refusals, open holds and spend feed Effect metrics", () =>
    Effect.gen(function* () {
      yield* makeTeam("metered", limits({ maxBudget: 20 }))
      const key = yield* makeKey({ team: "metered" })
      const policy = yield* BudgetPolicy.BudgetPolicy
      const teamRefusals = Metrics.refusals.pipe(
        Metric.tagged("reason", "BudgetExceeded"),
        Metric.tagged("scope", "team")
      )
      const before = {
        refusals: (yield* Metric.value(teamRefusals)).count,
        admissions: (yield* Metric.value(Metrics.admissions)).count,
        spend: (yield* Metric.value(Metrics.spendNanos)).count,
        holds: (yield* Metric.value(Metrics.holdsOpen)).value
      }
      const admission = yield* policy.authorize(request(key))
      expect((yield* Metric.value(Metrics.holdsOpen)).value).toBe(before.holds + 1)
      yield* Effect.flip(policy.authorize(request(key)))
      yield* policy.settle(admission, { promptTokens: 1000, completionTokens: 1000 })
      expect((yield* Metric.value(Metrics.admissions)).count).toBe(before.admissions + 1)
      expect((yield* Metric.value(Metrics.holdsOpen)).value).toBe(before.holds)
      // $20 in nano-dollars.
      expect((yield* Metric.value(Metrics.spendNanos)).count).toBe(before.spend + 20_000_000_000n)
      expect((yield* Metric.value(teamRefusals)).count).toBe(before.refusals + 1)
    }).pipe(Effect.provide(makeServices()))
  )
})
