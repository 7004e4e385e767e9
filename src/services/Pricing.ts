/**
 * What a model costs. Prices are exact: femto-dollars (1e-15 USD) per token, so a
 * price such as $0.0375 per million tokens is held without rounding.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { PriceUnknown } from "../domain/Errors.js"
import type { Money } from "../domain/Money.js"

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
  /** The cost of a usage, rounded up to the next nano-dollar. */
  readonly cost: (model: string, usage: Usage) => Effect.Effect<Money, PriceUnknown>
}

/** @since 0.1.0 */
export class Pricing extends Context.Tag("teambudget/Pricing")<Pricing, PricingShape>() {}
