/**
 * Exact cost arithmetic. Prices are femto-dollars per token and a cost is the exact
 * sum rounded up to the next nano-dollar: a budget must never be under-charged, so no
 * request, however small, is free unless its model is.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import type { ModelPrice, Usage } from "../Pricing.js"

/** Femto-dollars (1e-15 USD) in one nano-dollar (1e-9 USD). @since 0.1.0 */
export const FEMTO_PER_NANO = 1_000_000n

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/**
 * Checks token counts: non-negative integers, cached tokens no more than prompt
 * tokens (they are part of them). Returns the first problem, or `undefined`.
 *
 * @since 0.1.0
 */
export const validateUsage = (usage: Usage): InvalidRequest | undefined => {
  if (!isCount(usage.promptTokens)) {
    return new InvalidRequest({ path: "usage.promptTokens", detail: "must be a non-negative integer" })
  }
  if (!isCount(usage.completionTokens)) {
    return new InvalidRequest({ path: "usage.completionTokens", detail: "must be a non-negative integer" })
  }
  const cached = usage.cachedPromptTokens
  if (cached === undefined) return undefined
  if (!isCount(cached)) {
    return new InvalidRequest({ path: "usage.cachedPromptTokens", detail: "must be a non-negative integer" })
  }
  if (cached > usage.promptTokens) {
    return new InvalidRequest({
      path: "usage.cachedPromptTokens",
      detail: `must not exceed promptTokens (${usage.promptTokens}), got ${cached}`
    })
  }
  return undefined
}

/**
 * The exact cost in femto-dollars, before rounding. Expects a valid usage.
 *
 * @since 0.1.0
 */
export const femtoCost = (price: ModelPrice, usage: Usage): bigint => {
  const cached = BigInt(usage.cachedPromptTokens ?? 0)
  const cachedRate = Option.getOrElse(price.cachedInputPerToken, () => price.inputPerToken)
  return (
    (BigInt(usage.promptTokens) - cached) * price.inputPerToken +
    cached * cachedRate +
    BigInt(usage.completionTokens) * price.outputPerToken
  )
}

/**
 * The cost of a valid usage, rounded up to the next nano-dollar.
 *
 * @example
 * // $0.0375 per million prompt tokens, one token: 37.5 nano-dollars, charged 38
 * costOf(price, { promptTokens: 1, completionTokens: 0 }) // 38n
 * @since 0.1.0
 */
export const costOf = (price: ModelPrice, usage: Usage): Money.Money =>
  Money.make((femtoCost(price, usage) + FEMTO_PER_NANO - 1n) / FEMTO_PER_NANO)
