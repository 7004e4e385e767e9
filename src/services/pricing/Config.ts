/**
 * Operator-supplied prices. A plain object, so the proxy can fill it from a
 * LiteLLM-style `config.yaml` (`input_cost_per_token`, `output_cost_per_token`,
 * `max_tokens` per model) and a host can write it inline.
 *
 * @since 0.1.0
 */
import { Either, Option, Schema } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import { fromParseError } from "../internal/invalidRequest.js"
import type { ModelPrice } from "../Pricing.js"
import { FemtoFromUsdPerToken } from "./femto.js"
import type { LiteLLMPrices } from "./LiteLLM.js"

/**
 * One model's price, in USD per token as JSON numbers.
 *
 * @since 0.1.0
 */
export interface ModelPriceConfig {
  readonly inputCostPerToken: number
  readonly outputCostPerToken: number
  /** Price of a cached prompt token; prompt tokens served from cache cost the input price without it. */
  readonly cachedInputCostPerToken?: number
  /** The output cap used to estimate a request that sets no `max_tokens`. */
  readonly maxOutputTokens?: number
}

/**
 * Where prices come from, highest priority first: `models`, then `free`, then
 * `litellm` (a loaded `model_prices_and_context_window.json`), then the bundled
 * catalogue unless `catalogue` is `false`.
 *
 * @example
 * const config: PricingConfig = {
 *   models: { "my-llama": { inputCostPerToken: 2e-7, outputCostPerToken: 6e-7, maxOutputTokens: 4096 } },
 *   free: ["local-mock"]
 * }
 * @since 0.1.0
 */
export interface PricingConfig {
  readonly models?: Readonly<Record<string, ModelPriceConfig>>
  /** Models that cost nothing (self-hosted, mocks). */
  readonly free?: ReadonlyArray<string>
  readonly litellm?: LiteLLMPrices
  /** Use the offline catalogue of `@pydantic/genai-prices`. Default `true`. */
  readonly catalogue?: boolean
}

const ModelPriceFromConfig = Schema.Struct({
  inputCostPerToken: FemtoFromUsdPerToken,
  outputCostPerToken: FemtoFromUsdPerToken,
  cachedInputCostPerToken: Schema.optionalWith(FemtoFromUsdPerToken, { exact: true }),
  maxOutputTokens: Schema.optionalWith(
    Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" })),
    { exact: true }
  )
}).annotations({ parseOptions: { onExcessProperty: "error" } })

const ConfigFields = Schema.Struct({
  models: Schema.optionalWith(Schema.Record({ key: Schema.String, value: ModelPriceFromConfig }), {
    exact: true
  }),
  free: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  catalogue: Schema.optionalWith(Schema.Boolean, { exact: true })
})

/**
 * A validated configuration, ready for lookups.
 *
 * @since 0.1.0
 */
export interface CompiledConfig {
  readonly models: ReadonlyMap<string, ModelPrice>
  readonly free: ReadonlySet<string>
  readonly litellm: ReadonlyMap<string, ModelPrice>
  readonly catalogue: boolean
}

/** @since 0.1.0 */
export const freePrice = (model: string): ModelPrice => ({
  model,
  inputPerToken: 0n,
  outputPerToken: 0n,
  cachedInputPerToken: Option.none(),
  maxOutputTokens: Option.none(),
  source: "free"
})

/**
 * Validates a configuration. Bad values are refused with their path (e.g.
 * `models.gpt-x.inputCostPerToken`), so a typo cannot silently make a model free.
 *
 * @since 0.1.0
 */
export const compile = (config: PricingConfig): Either.Either<CompiledConfig, InvalidRequest> =>
  Either.gen(function* () {
    const fields = yield* Either.mapLeft(Schema.decodeUnknownEither(ConfigFields)(config), (error) =>
      fromParseError(error)
    )
    const models = new Map<string, ModelPrice>()
    for (const [model, entry] of Object.entries(fields.models ?? {})) {
      models.set(model, {
        model,
        inputPerToken: entry.inputCostPerToken,
        outputPerToken: entry.outputCostPerToken,
        cachedInputPerToken: Option.fromNullable(entry.cachedInputCostPerToken),
        maxOutputTokens: Option.fromNullable(entry.maxOutputTokens),
        source: "config"
      })
    }
    const free = new Set<string>()
    for (const [index, model] of (fields.free ?? []).entries()) {
      if (models.has(model)) {
        return yield* Either.left(
          new InvalidRequest({
            path: `free.${index}`,
            detail: `model ${JSON.stringify(model)} is also given a price in models`
          })
        )
      }
      free.add(model)
    }
    return {
      models,
      free,
      litellm: config.litellm?.models ?? new Map<string, ModelPrice>(),
      catalogue: fields.catalogue ?? true
    }
  })
