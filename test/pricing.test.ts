import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { calcPrice } from "@pydantic/genai-prices"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Option, TestClock } from "effect"
import * as fc from "fast-check"
import { fromScaled, toScaled } from "../src/domain/Decimal.js"
import * as Money from "../src/domain/Money.js"
import * as Pricing from "../src/services/Pricing.js"
import { femtoCost } from "../src/services/pricing/exact.js"

const femtoPerMillion = (usd: number | undefined): bigint => {
  const femto = usd === undefined ? undefined : toScaled(usd, 9)
  if (femto === undefined) throw new Error(`not a price: ${usd}`)
  return femto
}

const rate = (value: unknown): number => {
  if (typeof value === "number") return value
  throw new Error(`expected a flat rate, got ${JSON.stringify(value)}`)
}

const failure = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<E> =>
  Effect.flip(effect).pipe(Effect.orDieWith(() => new Error("expected a failure")))

describe("Pricing: catalogue", () => {
  it.effect("prices a known model with no configuration, at the catalogue's published figure", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make()
      const published = calcPrice({ input_tokens: 1_000_000, output_tokens: 1_000_000 }, "gpt-4o-mini", {
        providerId: "openai"
      })
      if (published === null) throw new Error("the catalogue lost gpt-4o-mini")

      const price = yield* pricing.price("gpt-4o-mini")
      expect(price.source).toBe("catalogue")
      expect(price.inputPerToken).toBe(femtoPerMillion(rate(published.model_price.input_mtok)))
      expect(price.outputPerToken).toBe(femtoPerMillion(rate(published.model_price.output_mtok)))
      expect(price.cachedInputPerToken).toEqual(
        Option.some(femtoPerMillion(rate(published.model_price.cache_read_mtok)))
      )
      // The figures of the pinned catalogue: $0.15 and $0.60 per million tokens.
      expect(price.inputPerToken).toBe(150_000_000n)
      expect(price.outputPerToken).toBe(600_000_000n)

      const million = yield* pricing.cost("gpt-4o-mini", { promptTokens: 1_000_000, completionTokens: 0 })
      expect(million).toBe(Money.fromUsd(published.input_price))
      const both = yield* pricing.cost("gpt-4o-mini", {
        promptTokens: 1_000_000,
        completionTokens: 1_000_000
      })
      expect(both).toBe(Money.fromUsd(published.total_price))
    })
  )

  it.effect("looks up a provider-prefixed name as provider + model", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make()
      const plain = yield* pricing.price("gpt-4o-mini")
      const prefixed = yield* pricing.price("openai/gpt-4o-mini")
      expect(prefixed.model).toBe("openai/gpt-4o-mini")
      expect(prefixed.inputPerToken).toBe(plain.inputPerToken)
      expect(prefixed.outputPerToken).toBe(plain.outputPerToken)
      // A router's name carries a second prefix; the catalogue knows it under that provider.
      const routed = yield* pricing.price("openrouter/openai/gpt-4o-mini")
      expect(routed.inputPerToken).toBe(plain.inputPerToken)
    })
  )

  it.effect("charges a time-of-day priced model its highest rate at any hour", () =>
    Effect.gen(function* () {
      const at = (iso: string) => {
        const found = calcPrice({ input_tokens: 0, output_tokens: 0 }, "deepseek-chat", {
          providerId: "deepseek",
          timestamp: new Date(iso)
        })
        if (found === null) throw new Error("the catalogue lost deepseek-chat")
        return femtoPerMillion(rate(found.model_price.output_mtok))
      }
      const peak = at("2025-06-01T08:00:00Z")
      const offPeak = at("2025-06-01T20:00:00Z")
      expect(offPeak).toBeLessThan(peak)

      // The first lookup happens off-peak; the cached price must still be the peak one.
      yield* TestClock.setTime(Date.parse("2025-06-01T20:00:00Z"))
      const pricing = yield* Pricing.make()
      const price = yield* pricing.price("deepseek-chat")
      expect(price.outputPerToken).toBe(peak)
    })
  )

  it.effect("charges a tiered model its highest tier", () =>
    Effect.gen(function* () {
      const found = calcPrice({ input_tokens: 0, output_tokens: 0 }, "gemini-1.5-pro", {
        providerId: "google"
      })
      const input = found?.model_price.input_mtok
      if (input === undefined || typeof input === "number")
        throw new Error("gemini-1.5-pro is no longer tiered")
      const pricing = yield* Pricing.make()
      const price = yield* pricing.price("gemini-1.5-pro")
      const highest = Math.max(input.base, ...input.tiers.map((tier) => tier.price))
      expect(highest).toBeGreaterThan(input.base)
      expect(price.inputPerToken).toBe(femtoPerMillion(highest))
    })
  )

  it.effect("prices an embedding model with no output rate at zero output", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make()
      const price = yield* pricing.price("text-embedding-3-small")
      expect(price.outputPerToken).toBe(0n)
      expect(price.inputPerToken).toBeGreaterThan(0n)
    })
  )
})

describe("Pricing: configuration", () => {
  it.effect("configuration overrides the catalogue, also under a provider prefix", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({
        models: {
          "gpt-4o-mini": { inputCostPerToken: 1e-6, outputCostPerToken: 2e-6, maxOutputTokens: 512 }
        }
      })
      for (const name of ["gpt-4o-mini", "openai/gpt-4o-mini"]) {
        const price = yield* pricing.price(name)
        expect(price).toEqual({
          model: name,
          inputPerToken: 1_000_000_000n,
          outputPerToken: 2_000_000_000n,
          cachedInputPerToken: Option.none(),
          maxOutputTokens: Option.some(512),
          source: "config"
        })
      }
      const cost = yield* pricing.cost("gpt-4o-mini", { promptTokens: 10, completionTokens: 5 })
      expect(cost).toBe(20_000n)
    })
  )

  it.effect("refuses an invalid price with its path, so a typo cannot make a model free", () =>
    Effect.gen(function* () {
      const negative = yield* failure(
        Pricing.make({ models: { m: { inputCostPerToken: -1e-6, outputCostPerToken: 0 } } })
      )
      expect(negative).toMatchObject({ _tag: "InvalidRequest", path: "models.m.inputCostPerToken" })

      const nan = yield* failure(
        Pricing.make({ models: { m: { inputCostPerToken: 0, outputCostPerToken: NaN } } })
      )
      expect(nan).toMatchObject({ _tag: "InvalidRequest", path: "models.m.outputCostPerToken" })

      const tooFine = yield* failure(
        Pricing.make({ models: { m: { inputCostPerToken: 1e-17, outputCostPerToken: 0 } } })
      )
      expect(tooFine).toMatchObject({ _tag: "InvalidRequest", path: "models.m.inputCostPerToken" })

      const cap = yield* failure(
        Pricing.make({ models: { m: { inputCostPerToken: 0, outputCostPerToken: 0, maxOutputTokens: 0 } } })
      )
      expect(cap).toMatchObject({ _tag: "InvalidRequest", path: "models.m.maxOutputTokens" })

      const typo = { inputCostPerToken: 1e-6, outputCostPerToken: 1e-6, outputCostPerTokens: 5 }
      const unknownField = yield* failure(Pricing.make({ models: { m: typo } }))
      expect(unknownField).toMatchObject({ _tag: "InvalidRequest", path: "models.m.outputCostPerTokens" })
    })
  )

  it.effect("an unknown model is PriceUnknown, with a message that says what to do", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make()
      const error = yield* failure(pricing.price("no-such-model-anywhere"))
      expect(error._tag).toBe("PriceUnknown")
      expect(error.message).toContain('"no-such-model-anywhere"')
      expect(error.message).toContain("Configure its price")
      const viaCost = yield* failure(
        pricing.cost("no-such-model-anywhere", { promptTokens: 1, completionTokens: 1 })
      )
      expect(viaCost._tag).toBe("PriceUnknown")
    })
  )

  it.effect("with the catalogue off, only configured models have a price", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({ catalogue: false })
      const error = yield* failure(pricing.price("gpt-4o-mini"))
      expect(error._tag).toBe("PriceUnknown")
    })
  )

  it.effect("a free model costs nothing, also under a provider prefix", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({ free: ["local-llama"], catalogue: false })
      const price = yield* pricing.price("ollama/local-llama")
      expect(price.source).toBe("free")
      expect(price.inputPerToken).toBe(0n)
      const cost = yield* pricing.cost("local-llama", {
        promptTokens: 1_000_000,
        completionTokens: 1_000_000
      })
      expect(cost).toBe(0n)
    })
  )

  it.effect("a model both priced and free is a configuration error", () =>
    Effect.gen(function* () {
      const error = yield* failure(
        Pricing.make({
          models: { m: { inputCostPerToken: 1e-6, outputCostPerToken: 1e-6 } },
          free: ["x", "m"]
        })
      )
      expect(error).toMatchObject({ _tag: "InvalidRequest", path: "free.1" })
    })
  )

  it.effect("layer provides the service", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.Pricing
      const cost = yield* pricing.cost("m", { promptTokens: 3, completionTokens: 0 })
      expect(cost).toBe(3_000n)
    }).pipe(
      Effect.provide(Pricing.layer({ models: { m: { inputCostPerToken: 1e-6, outputCostPerToken: 1e-6 } } }))
    )
  )
})

describe("Pricing: exact cost", () => {
  it.effect("rounds a fractional nano-dollar up, never down", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({
        models: {
          // $0.0375 per million tokens: 37.5 nano-dollars per token.
          small: { inputCostPerToken: 0.0375 / 1e6, outputCostPerToken: 0 },
          // $0.0005 per million tokens: half a nano-dollar per token.
          tiny: { inputCostPerToken: 5e-10, outputCostPerToken: 0 },
          // Exactly one nano-dollar per token: nothing to round.
          whole: { inputCostPerToken: 1e-9, outputCostPerToken: 0 }
        }
      })
      expect((yield* pricing.price("small")).inputPerToken).toBe(37_500_000n)
      expect(yield* pricing.cost("small", { promptTokens: 1, completionTokens: 0 })).toBe(38n)
      expect(yield* pricing.cost("small", { promptTokens: 2, completionTokens: 0 })).toBe(75n)
      expect(yield* pricing.cost("tiny", { promptTokens: 1, completionTokens: 0 })).toBe(1n)
      expect(yield* pricing.cost("tiny", { promptTokens: 2, completionTokens: 0 })).toBe(1n)
      expect(yield* pricing.cost("tiny", { promptTokens: 3, completionTokens: 0 })).toBe(2n)
      expect(yield* pricing.cost("whole", { promptTokens: 1, completionTokens: 0 })).toBe(1n)
      expect(yield* pricing.cost("whole", { promptTokens: 0, completionTokens: 0 })).toBe(0n)
    })
  )

  it.effect("cached prompt tokens are charged at the cached rate, or the input rate without one", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({
        models: {
          cached: { inputCostPerToken: 2e-6, outputCostPerToken: 8e-6, cachedInputCostPerToken: 5e-7 },
          plain: { inputCostPerToken: 2e-6, outputCostPerToken: 8e-6 }
        }
      })
      const full = yield* pricing.cost("cached", { promptTokens: 1000, completionTokens: 100 })
      const discounted = yield* pricing.cost("cached", {
        promptTokens: 1000,
        completionTokens: 100,
        cachedPromptTokens: 800
      })
      // 200 × $2e-6 + 800 × $5e-7 + 100 × $8e-6 = $0.0016
      expect(full).toBe(2_800_000n)
      expect(discounted).toBe(1_600_000n)
      const noDiscount = yield* pricing.cost("plain", {
        promptTokens: 1000,
        completionTokens: 100,
        cachedPromptTokens: 800
      })
      expect(noDiscount).toBe(full)
    })
  )

  it.effect("refuses token counts that are not non-negative integers, naming the field", () =>
    Effect.gen(function* () {
      const pricing = yield* Pricing.make({
        models: { m: { inputCostPerToken: 1e-6, outputCostPerToken: 1e-6 } }
      })
      const cases = [
        [{ promptTokens: -1, completionTokens: 0 }, "usage.promptTokens"],
        [{ promptTokens: 1.5, completionTokens: 0 }, "usage.promptTokens"],
        [{ promptTokens: 1, completionTokens: NaN }, "usage.completionTokens"],
        [{ promptTokens: 1, completionTokens: 0, cachedPromptTokens: -2 }, "usage.cachedPromptTokens"],
        [{ promptTokens: 1, completionTokens: 0, cachedPromptTokens: 2 }, "usage.cachedPromptTokens"]
      ] as const
      for (const [usage, path] of cases) {
        const error = yield* failure(pricing.cost("m", usage))
        expect(error).toMatchObject({ _tag: "InvalidRequest", path })
      }
    })
  )

  const femtoPrice = fc.bigInt({ min: 0n, max: 10n ** 12n })
  const tokens = fc.integer({ min: 0, max: 10_000_000 })

  it("is never below the exact value, and less than one nano-dollar above it", () => {
    fc.assert(
      fc.property(
        femtoPrice,
        femtoPrice,
        femtoPrice,
        tokens,
        tokens,
        tokens,
        (input, output, cached, p, c, k) => {
          const pricing = Effect.runSync(
            Pricing.make({
              models: {
                m: {
                  inputCostPerToken: fromScaled(input, 15),
                  outputCostPerToken: fromScaled(output, 15),
                  cachedInputCostPerToken: fromScaled(cached, 15)
                }
              }
            })
          )
          const promptTokens = p + k
          const exact = BigInt(p) * input + BigInt(k) * cached + BigInt(c) * output // femto-dollars, as a rational over 1e6
          const cost = Effect.runSync(
            pricing.cost("m", { promptTokens, completionTokens: c, cachedPromptTokens: k })
          )
          expect(cost * 1_000_000n).toBeGreaterThanOrEqual(exact)
          expect(cost * 1_000_000n - exact).toBeLessThan(1_000_000n)
        }
      )
    )
  })

  it("is monotone in every token count", () => {
    const pricing = Effect.runSync(
      Pricing.make({
        models: {
          m: { inputCostPerToken: 0.15 / 1e6, outputCostPerToken: 0.6 / 1e6, cachedInputCostPerToken: 7.5e-8 }
        }
      })
    )
    const usage = fc.record({
      promptTokens: tokens,
      completionTokens: tokens,
      cachedShare: fc.double({ min: 0, max: 1, noNaN: true })
    })
    fc.assert(
      fc.property(usage, tokens, tokens, tokens, (base, morePrompt, moreCompletion, moreCached) => {
        const cached = Math.floor(base.promptTokens * base.cachedShare)
        const cost = (u: Pricing.Usage) => Effect.runSync(pricing.cost("m", u))
        const before = cost({
          promptTokens: base.promptTokens,
          completionTokens: base.completionTokens,
          cachedPromptTokens: cached
        })
        const after = cost({
          promptTokens: base.promptTokens + morePrompt + moreCached,
          completionTokens: base.completionTokens + moreCompletion,
          cachedPromptTokens: cached + moreCached
        })
        expect(after).toBeGreaterThanOrEqual(before)
      })
    )
  })

  it("agrees with the exact femto sum on the published figure", () => {
    const price: Pricing.ModelPrice = {
      model: "m",
      inputPerToken: 150_000_000n,
      outputPerToken: 600_000_000n,
      cachedInputPerToken: Option.some(75_000_000n),
      maxOutputTokens: Option.none(),
      source: "config"
    }
    expect(femtoCost(price, { promptTokens: 1000, completionTokens: 10, cachedPromptTokens: 500 })).toBe(
      500n * 150_000_000n + 500n * 75_000_000n + 10n * 600_000_000n
    )
  })
})

describe("Pricing: LiteLLM price file", () => {
  const fixture = {
    sample_spec: { input_cost_per_token: 0.0, max_tokens: "LEGACY parameter" },
    "gpt-4o-mini": {
      input_cost_per_token: 3e-7,
      output_cost_per_token: 1.2e-6,
      cache_read_input_token_cost: 1.5e-7,
      max_output_tokens: 16384,
      max_tokens: 16384,
      litellm_provider: "openai",
      mode: "chat"
    },
    "legacy-model": {
      input_cost_per_token: 1e-6,
      output_cost_per_token: 2e-6,
      max_tokens: 4096,
      mode: "chat"
    },
    "my-embedder": { input_cost_per_token: 2e-8, mode: "embedding" },
    "half-priced-chat": { input_cost_per_token: 2e-8, mode: "chat" },
    "1024-x-1024/dall-e-2": {
      input_cost_per_pixel: 1.9e-8,
      output_cost_per_pixel: 0.0,
      mode: "image_generation"
    },
    "broken-price": { input_cost_per_token: "cheap", output_cost_per_token: 1e-6 },
    "negative-price": { input_cost_per_token: -1e-6, output_cost_per_token: 1e-6 },
    "not-an-object": "oops"
  }

  const withFixture = <A, E>(body: string, use: (path: string) => Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "teambudget-prices-"))),
      (dir) =>
        Effect.gen(function* () {
          const path = join(dir, "model_prices_and_context_window.json")
          yield* Effect.promise(() => writeFile(path, body))
          return yield* use(path)
        }),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )

  it.effect("loads token prices, skips and counts undecodable entries, ignores unpriced ones", () =>
    withFixture(JSON.stringify(fixture), (path) =>
      Effect.gen(function* () {
        const prices = yield* Pricing.loadLiteLLMPrices(path)
        expect([...prices.models.keys()].sort()).toEqual(["gpt-4o-mini", "legacy-model", "my-embedder"])
        expect([...prices.invalid].sort()).toEqual(["broken-price", "negative-price", "not-an-object"])
        expect(prices.models.get("gpt-4o-mini")).toEqual({
          model: "gpt-4o-mini",
          inputPerToken: 300_000_000n,
          outputPerToken: 1_200_000_000n,
          cachedInputPerToken: Option.some(150_000_000n),
          maxOutputTokens: Option.some(16384),
          source: "litellm"
        })
        expect(prices.models.get("legacy-model")?.maxOutputTokens).toEqual(Option.some(4096))
        expect(prices.models.get("my-embedder")?.outputPerToken).toBe(0n)
      })
    )
  )

  it.effect("a LiteLLM price beats the catalogue, and configuration beats both", () =>
    withFixture(JSON.stringify(fixture), (path) =>
      Effect.gen(function* () {
        const litellm = yield* Pricing.loadLiteLLMPrices(path)
        const fromFile = yield* Pricing.make({ litellm })
        const price = yield* fromFile.price("openai/gpt-4o-mini")
        expect(price.source).toBe("litellm")
        expect(price.inputPerToken).toBe(300_000_000n)
        expect(price.model).toBe("openai/gpt-4o-mini")

        const configured = yield* Pricing.make({
          litellm,
          models: { "gpt-4o-mini": { inputCostPerToken: 1e-7, outputCostPerToken: 1e-7 } }
        })
        expect((yield* configured.price("gpt-4o-mini")).source).toBe("config")
        // Unpriced in the file, so it falls through to the (disabled) catalogue.
        const fallthrough = yield* Pricing.make({ litellm, catalogue: false })
        expect(Exit.isFailure(yield* Effect.exit(fallthrough.price("half-priced-chat")))).toBe(true)
      })
    )
  )

  it.effect("refuses a missing file, a file that is not JSON, and JSON that is not an object", () =>
    Effect.gen(function* () {
      const missing = yield* failure(
        Pricing.loadLiteLLMPrices(join(tmpdir(), "teambudget-no-such-file.json"))
      )
      expect(missing._tag).toBe("InvalidRequest")
      expect(missing.message).toContain("ENOENT")

      const notJson = yield* withFixture("{ not json", (path) => failure(Pricing.loadLiteLLMPrices(path)))
      expect(notJson.message).toContain("is not JSON")

      const array = yield* withFixture("[1, 2]", (path) => failure(Pricing.loadLiteLLMPrices(path)))
      expect(array.message).toContain("JSON object")

      expect(Either.isLeft(Effect.runSync(Effect.either(Pricing.fromLiteLLMJson(null))))).toBe(true)
    })
  )
})
