/**
 * The gateway's own pricing source: an in-house price sheet in nano-dollars per
 * thousand tokens, implementing the SDK's `Pricing` port directly. Nothing else in the
 * gateway knows where prices come from.
 */
import { Effect, Layer, Option } from "effect"
import { InvalidRequest, Money, Pricing, PriceUnknown } from "../../src/index.js"

/** Nano-dollars (1e-9 USD) per 1,000 tokens: $0.50 per million tokens is 500. */
export interface SheetPrice {
  readonly inputPer1k: number
  readonly outputPer1k: number
  /** The largest reply the model gives; a request without `max_tokens` holds this many. */
  readonly maxOutputTokens: number
}

export type Sheet = Readonly<Record<string, SheetPrice>>

// The port speaks femto-dollars (1e-15 USD) per token: 1 nano per 1k tokens is 1,000 femto per token.
const FEMTO_PER_NANO_PER_1K = 1_000n

const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0

/** The cost of a usage in whole nano-dollars, rounded up: a budget is never under-charged. */
export const costOf = (price: SheetPrice, usage: Pricing.Usage): Money.Money => {
  const thousandths =
    BigInt(usage.promptTokens) * BigInt(price.inputPer1k) +
    BigInt(usage.completionTokens) * BigInt(price.outputPer1k)
  return Money.make((thousandths + 999n) / 1000n)
}

/** A `Pricing` service over a price sheet. */
export const make = (sheet: Sheet): Pricing.PricingShape => {
  const find = (model: string) =>
    Option.match(Option.fromNullable(sheet[model]), {
      onNone: () => Effect.fail(new PriceUnknown({ model })),
      onSome: (price) => Effect.succeed(price)
    })
  return {
    price: (model) =>
      Effect.map(find(model), (price): Pricing.ModelPrice => ({
        model,
        inputPerToken: BigInt(price.inputPer1k) * FEMTO_PER_NANO_PER_1K,
        outputPerToken: BigInt(price.outputPer1k) * FEMTO_PER_NANO_PER_1K,
        cachedInputPerToken: Option.none(),
        maxOutputTokens: Option.some(price.maxOutputTokens),
        source: "config"
      })),
    cost: (model, usage) =>
      isCount(usage.promptTokens) && isCount(usage.completionTokens)
        ? Effect.map(find(model), (price) => costOf(price, usage))
        : Effect.fail(
            new InvalidRequest({ path: "usage", detail: "token counts must be non-negative integers" })
          )
  }
}

export const layer = (sheet: Sheet): Layer.Layer<Pricing.Pricing> =>
  Layer.succeed(Pricing.Pricing, make(sheet))
