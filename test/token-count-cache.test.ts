/**
 * Remembered token counts: a long text is counted once while it is remembered, a short
 * one every time; the cache stays within its capacity, forgetting the least recently
 * used first; and an estimate made with remembered counts is the estimate made without.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fc from "fast-check"
import * as TokenCountCache from "../src/services/internal/TokenCountCache.js"
import * as TokenEstimator from "../src/services/TokenEstimator.js"

const { countText, estimateBody } = TokenEstimator
const LONG = TokenCountCache.MIN_CACHED_LENGTH

/** `countText`, remembering which texts it was asked to count. */
const recording = () => {
  const asked: Array<string> = []
  return {
    asked,
    count: (text: string) => {
      asked.push(text)
      return countText(text)
    }
  }
}

const long = (seed: string) => `${seed} `.repeat(Math.ceil(LONG / (seed.length + 1)))

const estimate = (body: unknown, count?: (text: string) => number) => {
  const result = estimateBody(body, count)
  if (Either.isLeft(result)) throw new Error(`unexpected refusal: ${result.left.message}`)
  return result.right
}

describe("TokenCountCache", () => {
  it("counts a long text once and remembers its count", () => {
    const inner = recording()
    const cache = TokenCountCache.make(inner.count, 8)
    const text = long("a system prompt that every request repeats")
    const first = cache.count(text)
    expect(first).toBe(countText(text))
    expect(cache.count(text)).toBe(first)
    // An equal text built apart is the same text.
    expect(cache.count(text.split("").join(""))).toBe(first)
    expect(inner.asked).toEqual([text])
    expect(cache.size()).toBe(1)
  })

  it("counts every time and remembers nothing for a short text, or for any text at capacity 0", () => {
    for (const [text, capacity] of [
      ["x".repeat(LONG - 1), 8],
      [long("never remembered"), 0]
    ] as const) {
      const inner = recording()
      const cache = TokenCountCache.make(inner.count, capacity)
      cache.count(text)
      cache.count(text)
      expect(inner.asked).toEqual([text, text])
      expect(cache.size()).toBe(0)
    }
  })

  it("recalls a remembered count, or remembers one made elsewhere (a short text never)", () => {
    const counter = recording()
    const cache = TokenCountCache.make(counter.count, 16)
    const text = long("counted on a worker")
    const remember = cache.recall(text)
    if (typeof remember === "number") throw new Error("nothing was remembered yet")
    remember(4242)
    expect(cache.recall(text)).toBe(4242)
    expect(cache.count(text)).toBe(4242)
    const short = "a short text"
    const nothing = cache.recall(short)
    if (typeof nothing === "number") throw new Error("a short text is never remembered")
    nothing(7)
    expect(typeof cache.recall(short)).toBe("function")
    expect(cache.size()).toBe(1)
    // Nothing was counted here: the counts came from elsewhere.
    expect(counter.asked).toEqual([])
  })

  it("tells distinct long texts apart", () => {
    const cache = TokenCountCache.make(countText, 8)
    const a = long("alpha")
    const b = long("a much longer sentence with many more distinct words in it")
    expect(cache.count(a)).toBe(countText(a))
    expect(cache.count(b)).toBe(countText(b))
    expect(countText(a)).not.toBe(countText(b))
  })

  it("holds at most its capacity, forgetting the least recently used first", () => {
    const inner = recording()
    const cache = TokenCountCache.make(inner.count, 3)
    const [a, b, c, d] = ["one", "two", "three", "four"].map(long)
    if (a === undefined || b === undefined || c === undefined || d === undefined)
      throw new Error("four texts")
    cache.count(a)
    cache.count(b)
    cache.count(c)
    cache.count(a) // a is now the most recently used; b the least
    cache.count(d) // b is forgotten
    expect(cache.size()).toBe(3)
    inner.asked.length = 0
    cache.count(a)
    cache.count(c)
    cache.count(d)
    expect(inner.asked).toEqual([])
    cache.count(b)
    expect(inner.asked).toEqual([b])
    expect(cache.size()).toBe(3)
  })

  it("gives every estimate the count it would have without it, however often texts repeat", () => {
    const cache = TokenCountCache.make(countText, 16)
    const text = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ minLength: LONG, maxLength: LONG * 3, unit: "grapheme" }),
      fc.constantFrom(long("shared history"), long("a repeated tool description"))
    )
    const message = fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: text })
    const body = fc.oneof(
      fc.record({
        model: fc.constant("gpt-4o"),
        messages: fc.array(message, { minLength: 1, maxLength: 6 }),
        tools: fc.array(fc.record({ type: fc.constant("function"), description: text }), { maxLength: 2 })
      }),
      fc.record({
        model: fc.constant("text-embedding-3-small"),
        input: fc.array(text, { minLength: 1, maxLength: 4 })
      })
    )
    fc.assert(
      fc.property(body, (request) => {
        const expected = estimate(request)
        expect(estimate(request, cache.count)).toEqual(expected)
        expect(estimate(request, cache.count)).toEqual(expected)
      }),
      { numRuns: 150 }
    )
    expect(cache.size()).toBeLessThanOrEqual(16)
  })

  it.effect(
    "through the estimator layer, a long chat estimates as without remembered counts, turn after turn",
    () =>
      Effect.gen(function* () {
        const estimator = yield* TokenEstimator.TokenEstimator
        const history = Array.from({ length: 12 }, (_, turn) => ({
          role: turn % 2 === 0 ? "user" : "assistant",
          content: long(`turn ${turn} of a long conversation about budgets`)
        }))
        const body = { model: "gpt-4o", messages: history, max_tokens: 10 }
        const expected = estimate(body)
        expect(yield* estimator.estimate(body)).toEqual(expected)
        expect(yield* estimator.estimate(body)).toEqual(expected)
        const next = { ...body, messages: [...history, { role: "user", content: long("a new question") }] }
        expect(yield* estimator.estimate(next)).toEqual(estimate(next))
      }).pipe(Effect.provide(TokenEstimator.layer))
  )
})
