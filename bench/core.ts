/**
 * authorize + settle on the memory store with a warm key cache, against an empty
 * Effect program run the same way in the same process.
 */
import { Effect, Layer, ManagedRuntime, Option, Schema } from "effect"
import {
  BudgetPolicy,
  Ids,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Limits,
  MemoryStore,
  Money,
  Pricing,
  TeamRepo,
  Token
} from "../src/index.js"
import { fmt, percentile, timeBatches } from "./stats.js"

const services = BudgetPolicy.layer().pipe(
  Layer.provideMerge(KeyAuth.layer().pipe(Layer.provideMerge(Invalidation.layerLocal))),
  Layer.provideMerge(
    Pricing.layer({
      catalogue: false,
      models: { bench: { inputCostPerToken: 0.000001, outputCostPerToken: 0.000002 } }
    })
  ),
  // A bounded spend log: the memory store keeps every row by default, and a million rows would
  // measure the garbage collector rather than the budget check.
  Layer.provideMerge(MemoryStore.layer({ spendLogCapacity: 10_000 }))
)

export const run = async (): Promise<string> => {
  const runtime = ManagedRuntime.make(services)
  const token = Token.generateToken()
  await runtime.runPromise(
    Effect.gen(function* () {
      const teams = yield* TeamRepo
      const keys = yield* KeyRepo
      const team = yield* teams.insert({
        teamId: Schema.decodeSync(Ids.TeamId)("bench-team"),
        teamAlias: "bench",
        organizationId: Option.none(),
        limits: new Limits.Limits({
          ...Limits.none,
          maxBudget: Option.some(Money.make(1_000_000n * Money.NANOS_PER_USD))
        }),
        models: [],
        blocked: false,
        metadata: {}
      })
      yield* keys.insert({
        keyId: Schema.decodeSync(Ids.KeyId)("bench-key"),
        hash: Token.hashToken(token),
        keyAlias: Option.none(),
        displayPrefix: Token.displayPrefix(token),
        userId: Option.none(),
        teamId: Option.some(team.teamId),
        limits: Limits.none,
        models: [],
        expires: Option.none(),
        blocked: false,
        metadata: {}
      })
    })
  )
  const policy = await runtime.runPromise(BudgetPolicy.BudgetPolicy)
  const request = { apiKey: token, model: "bench", promptTokens: 20, maxOutputTokens: 100 }
  const usage = { promptTokens: 20, completionTokens: 60 }
  const authorizeSettle = Effect.flatMap(policy.authorize(request), (admission) =>
    policy.settle(admission, usage)
  )
  const empty = Effect.void
  const options = { batches: 200, batchSize: 500, warmup: 5_000 }

  const emptyTimes = await timeBatches(() => runtime.runPromise(empty), options)
  const fullTimes = await timeBatches(() => runtime.runPromise(authorizeSettle), options)
  await runtime.dispose()

  const emptyMedian = percentile(emptyTimes, 50)
  const fullMedian = percentile(fullTimes, 50)
  return [
    "### Core: authorize + settle, memory store, warm key cache",
    "",
    "| program | median µs/request | p99 of batch means µs | requests/s at median |",
    "| --- | ---: | ---: | ---: |",
    `| empty Effect program | ${fmt(emptyMedian)} | ${fmt(percentile(emptyTimes, 99))} | ${fmt(1e6 / emptyMedian, 0)} |`,
    `| authorize + settle | ${fmt(fullMedian)} | ${fmt(percentile(fullTimes, 99))} | ${fmt(1e6 / fullMedian, 0)} |`,
    "",
    `Ratio authorize+settle / empty program: **${fmt(fullMedian / emptyMedian, 1)}×** ` +
      `(target: median under 20 µs, i.e. over 50,000 per second on one core).`,
    ""
  ].join("\n")
}
