/**
 * The services of a complete in-process deployment over a fresh memory store.
 */
import { type Duration, Layer } from "effect"
import { BudgetPolicy, Invalidation, KeyAuth, MemoryStore, Pricing } from "../../src/index.js"

/** Prices used by the tests: "small" costs $1/M prompt and $2/M completion tokens; "big" $0.01 a token. */
export const testPricing: Pricing.PricingConfig = {
  catalogue: false,
  models: {
    small: { inputCostPerToken: 0.000001, outputCostPerToken: 0.000002, maxOutputTokens: 1000 },
    big: { inputCostPerToken: 0.01, outputCostPerToken: 0.01 }
  },
  free: ["free-model"]
}

export const makeServices = (
  options: { policy?: BudgetPolicy.BudgetPolicyOptions; holdTtl?: Duration.DurationInput } = {}
) => {
  const store = MemoryStore.layer(options.holdTtl === undefined ? {} : { holdTtl: options.holdTtl })
  const auth = KeyAuth.layer().pipe(Layer.provideMerge(Invalidation.layerLocal))
  return BudgetPolicy.layer(options.policy ?? {}).pipe(
    Layer.provideMerge(auth),
    Layer.provideMerge(Pricing.layer(testPricing)),
    Layer.provideMerge(store)
  )
}
