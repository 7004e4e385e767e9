/**
 * What a model costs. Prices are exact: femto-dollars (1e-15 USD) per token, so a
 * price such as $0.0375 per million tokens is held without rounding.
 *
 * Sources, highest priority first: the configured `models`, the configured `free`
 * list, a loaded LiteLLM price file, and the offline catalogue of
 * `@pydantic/genai-prices`. A name with a provider prefix (`openai/gpt-4o-mini`) is
 * looked up whole first, then as provider + model; in the catalogue a bare name the
 * catalogue cannot place is tried as an OpenAI model.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Either, Layer, type Option } from "effect"
import { type InvalidRequest, PriceUnknown } from "../domain/Errors.js"
import type { Money } from "../domain/Money.js"
import * as Catalogue from "./pricing/Catalogue.js"
import { type CompiledConfig, compile, freePrice, type PricingConfig } from "./pricing/Config.js"
import { costOf, validateUsage } from "./pricing/exact.js"

export type { ModelPriceConfig, PricingConfig } from "./pricing/Config.js"
export { fromLiteLLMJson, type LiteLLMPrices, loadLiteLLMPrices } from "./pricing/LiteLLM.js"

/** @since 0.1.0 */
export interface ModelPrice {
  readonly model: string
  /** Femto-dollars per prompt token. */
  readonly inputPerToken: bigint
  /** Femto-dollars per completion token. */
  readonly outputPerToken: bigint
  /** Femto-dollars per cached prompt token, when the model discounts them. */
  readonly cachedInputPerToken: Option.Option<bigint>
  /** The model's output cap, used when a request sets no `max_tokens`. */
  readonly maxOutputTokens: Option.Option<number>
  readonly source: "config" | "catalogue" | "litellm" | "free"
}

/**
 * Token counts of a request. `cachedPromptTokens` are part of `promptTokens`, as in
 * OpenAI's `usage.prompt_tokens_details.cached_tokens`.
 *
 * @since 0.1.0
 */
export interface Usage {
  readonly promptTokens: number
  readonly completionTokens: number
  readonly cachedPromptTokens?: number
}

/** @since 0.1.0 */
export interface PricingShape {
  readonly price: (model: string) => Effect.Effect<ModelPrice, PriceUnknown>
  /**
   * The cost of a usage, rounded up to the next nano-dollar. Token counts that are
   * not non-negative integers, or more cached than prompt tokens, are an
   * `InvalidRequest` naming the field.
   */
  readonly cost: (model: string, usage: Usage) => Effect.Effect<Money, PriceUnknown | InvalidRequest>
}

/** @since 0.1.0 */
export class Pricing extends Context.Tag("teambudget/Pricing")<Pricing, PricingShape>() {}

/**
 * Resolved prices are kept per model name so the hot path is one map lookup. Names
 * come from request bodies, so the map is bounded: past this size new names are
 * still priced, only not remembered.
 */
const MAX_CACHED_MODELS = 10_000

const splitProvider = (model: string): readonly [provider: string, name: string] | undefined => {
  const slash = model.indexOf("/")
  return slash > 0 && slash < model.length - 1 ? [model.slice(0, slash), model.slice(slash + 1)] : undefined
}

const resolve = (config: CompiledConfig, model: string, now: number): ModelPrice | undefined => {
  const split = splitProvider(model)
  const names = split === undefined ? [model] : [model, split[1]]
  for (const name of names) {
    const configured = config.models.get(name)
    if (configured !== undefined) return configured
  }
  for (const name of names) if (config.free.has(name)) return freePrice(model)
  for (const name of names) {
    const fromFile = config.litellm.get(name)
    if (fromFile !== undefined) return fromFile
  }
  if (!config.catalogue) return undefined
  // A bare name on an OpenAI-compatible API is most likely OpenAI's; the catalogue's
  // own name matching misses some of them (embeddings).
  return (
    Catalogue.lookup(model, undefined, now) ??
    (split === undefined ? Catalogue.lookup(model, "openai", now) : Catalogue.lookup(split[1], split[0], now))
  )
}

/**
 * Builds the pricing service. Fails with `InvalidRequest` (and the offending path)
 * when the configuration has an invalid price.
 *
 * @example
 * const pricing = yield* Pricing.make({ models: { "my-llama": { inputCostPerToken: 2e-7, outputCostPerToken: 6e-7 } } })
 * const cost = yield* pricing.cost("gpt-4o-mini", { promptTokens: 1000, completionTokens: 200 })
 * @since 0.1.0
 */
export const make = (config: PricingConfig = {}): Effect.Effect<PricingShape, InvalidRequest> =>
  Effect.map(Either.match(compile(config), { onLeft: Effect.fail, onRight: Effect.succeed }), (compiled) => {
    const cache = new Map<string, ModelPrice>()

    const lookup = (model: string): Effect.Effect<ModelPrice, PriceUnknown> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const found = resolve(compiled, model, now)
        if (found === undefined) return Effect.fail(new PriceUnknown({ model }))
        const price = found.model === model ? found : { ...found, model }
        if (cache.size < MAX_CACHED_MODELS) cache.set(model, price)
        return Effect.succeed(price)
      }).pipe(Effect.withSpan("Pricing.resolve", { attributes: { model } }))

    const price = (model: string): Effect.Effect<ModelPrice, PriceUnknown> =>
      Effect.suspend(() => {
        const cached = cache.get(model)
        return cached === undefined ? lookup(model) : Effect.succeed(cached)
      })

    const cost = (model: string, usage: Usage): Effect.Effect<Money, PriceUnknown | InvalidRequest> =>
      Effect.suspend((): Effect.Effect<Money, PriceUnknown | InvalidRequest> => {
        const invalid = validateUsage(usage)
        if (invalid !== undefined) return Effect.fail(invalid)
        const cached = cache.get(model)
        if (cached !== undefined) return Effect.succeed(costOf(cached, usage))
        return Effect.map(lookup(model), (found) => costOf(found, usage))
      })

    return { price, cost }
  })

/**
 * The pricing layer. With no configuration it prices every model the bundled
 * catalogue knows; pass `catalogue: false` to allow only configured models.
 *
 * @example
 * const PricingLive = Pricing.layer({ free: ["mock"], models: { "my-llama": { inputCostPerToken: 2e-7, outputCostPerToken: 6e-7 } } })
 * @since 0.1.0
 */
export const layer = (config?: PricingConfig): Layer.Layer<Pricing, InvalidRequest> =>
  Layer.effect(Pricing, make(config))
