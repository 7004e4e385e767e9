/**
 * Very long texts are counted on worker threads: the counts are the counts of this
 * thread, the event loop stays free while they are made, and a count a worker cannot
 * finish is made by the caller, so an estimate never fails for it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Scope } from "effect"
import * as TokenCountWorkers from "../src/services/internal/TokenCountWorkers.js"
import * as TokenEstimator from "../src/services/TokenEstimator.js"

const { countText, estimateBody } = TokenEstimator

const passage = (seed: string, chars: number) => {
  let text = ""
  for (let i = 0; text.length < chars; i++) text += `${seed} ${i} says <|endoftext|> café ☕ and so on. `
  return text.slice(0, chars)
}

const expected = (body: unknown) => {
  const result = estimateBody(body)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

/** A worker's count, once one is ready; fails after `deadline` ms. */
const countOnWorker = async (
  workers: TokenCountWorkers.TokenCountWorkers,
  text: string,
  deadline = 10_000
) => {
  const until = Date.now() + deadline
  for (;;) {
    const counting = workers.count(text)
    if (counting !== undefined) return counting
    if (Date.now() > until) throw new Error("no token count worker became ready")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Whether a callback queued just after `run` started ran before `run` finished. */
const eventLoopFreeDuring = async <A>(run: () => Promise<A>): Promise<{ free: boolean; value: A }> => {
  let ticked = false
  const pending = run()
  setImmediate(() => {
    ticked = true
  })
  const value = await pending
  return { free: ticked, value }
}

describe("TokenCountWorkers", () => {
  it("counts as this thread does, with special-token spellings as text", async () => {
    const workers = TokenCountWorkers.make(1)
    try {
      const texts = [passage("alpha", 5_000), passage("beta", 40_000), "<|endoftext|><|fim_prefix|>"]
      for (const text of texts) expect(await countOnWorker(workers, text)).toBe(countText(text))
    } finally {
      await workers.close()
    }
  })

  it("once closed, rejects what it was counting and takes nothing more", async () => {
    const workers = TokenCountWorkers.make(1)
    await countOnWorker(workers, "warm up")
    const counting = expect(countOnWorker(workers, passage("long", 400_000))).rejects.toThrow(/closed/)
    await workers.close()
    await counting
    expect(workers.count("anything")).toBeUndefined()
  })
})

/**
 * Runs `estimate` until a run leaves the event loop free (a worker counted), with a turn
 * of the event loop between runs, in which a starting worker can say it is ready.
 */
const untilOffThread = <A>(estimate: () => Promise<A>, check: (value: A) => void) =>
  Effect.gen(function* () {
    const until = Date.now() + 10_000
    for (;;) {
      const { free, value } = yield* Effect.promise(() => eventLoopFreeDuring(estimate))
      check(value)
      if (free) return true
      if (Date.now() > until) return false
      yield* Effect.sleep("20 millis")
    }
  })

describe("TokenEstimator with worker threads", () => {
  const options = { cachedCounts: 0, workerCountFrom: 10_000, countWorkers: 1 }

  it.live("estimates as on this thread, and once a worker is ready leaves the event loop free", () =>
    Effect.gen(function* () {
      const estimator = yield* TokenEstimator.TokenEstimator
      const body = {
        model: "gpt-4o",
        messages: [
          { role: "system", content: passage("system", 2_000) },
          { role: "user", content: passage("question", 300_000) }
        ],
        max_tokens: 16
      }
      // The first very long text starts the worker and is counted here, at once.
      const offThread = yield* untilOffThread(
        () => Effect.runPromise(estimator.estimate(body)),
        (estimate) => expect(estimate).toEqual(expected(body))
      )
      expect(offThread).toBe(true)
    }).pipe(Effect.provide(TokenEstimator.layerWith(options)))
  )

  it.live("an estimate whose worker stops under it is finished by the caller, exactly", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(TokenEstimator.layerWith(options), scope)
      const estimator = yield* Effect.provide(TokenEstimator.TokenEstimator, context)
      const warm = { model: "gpt-4o", input: passage("warm", 12_000) }
      const ready = yield* untilOffThread(
        () => Effect.runPromise(estimator.estimate(warm)),
        (estimate) => expect(estimate).toEqual(expected(warm))
      )
      expect(ready).toBe(true)
      const body = { model: "gpt-4o", input: [passage("embed", 400_000), passage("more", 20_000)] }
      const estimating = Effect.runPromise(estimator.estimate(body))
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => estimating)).toEqual(expected(body))
    })
  )
})
