/**
 * authorize + settle on the memory store with a warm key cache, against an empty
 * Effect program run the same way in the same process.
 */
import { Effect, ManagedRuntime } from "effect"
import { BudgetPolicy } from "../src/index.js"
import { seed, services } from "./fixture.js"
import { fmt, percentile, timeBatches } from "./stats.js"

export const run = async (): Promise<string> => {
  const runtime = ManagedRuntime.make(services)
  const token = await seed(runtime)
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
