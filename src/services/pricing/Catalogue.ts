/**
 * Prices from the offline catalogue bundled with `@pydantic/genai-prices` (no
 * network). The catalogue quotes USD per million tokens, sometimes tiered by
 * context length or varying with the time of day; this reduces each model to the
 * highest rate it can charge, because a budget must never be under-charged and the
 * price is cached for the life of the process.
 *
 * @since 0.1.0
 */
import { calcPrice, type ModelPrice as CatalogueRates, type PriceCalculation } from "@pydantic/genai-prices"
import { Either, Option, Schema } from "effect"
import type { ModelPrice } from "../Pricing.js"
import { FemtoFromUsdPerMillion } from "./femto.js"

const NO_USAGE = { input_tokens: 0, output_tokens: 0 }
const DAY_MILLIS = 86_400_000
const TIME_OF_DAY = /^(\d{2}):(\d{2}):(\d{2})/

const highest = (rate: CatalogueRates[string]): number | undefined => {
  if (rate === undefined) return undefined
  if (typeof rate === "number") return rate
  return Math.max(rate.base, ...rate.tiers.map((tier) => tier.price))
}

const calculate = (model: string, providerId: string | undefined, at: number): PriceCalculation | null => {
  try {
    const timestamp = new Date(at)
    return calcPrice(NO_USAGE, model, providerId === undefined ? { timestamp } : { providerId, timestamp })
  } catch {
    // The catalogue throws on entries it cannot price; for us that is "no price".
    return null
  }
}

/**
 * Instants of the current day at which each time-of-day price starts and ends, so
 * every alternative is seen whatever the hour of the first lookup.
 */
const sampleInstants = (found: PriceCalculation, now: number): ReadonlyArray<number> => {
  const prices = found.model.prices
  if (!Array.isArray(prices)) return []
  const midnight = now - (now % DAY_MILLIS)
  const instants: Array<number> = []
  for (const { constraint } of prices) {
    if (constraint?.type !== "time_of_date") continue
    for (const time of [constraint.start_time, constraint.end_time]) {
      const match = TIME_OF_DAY.exec(time)
      if (match === null) continue
      const [, h = "0", m = "0", s = "0"] = match
      instants.push(midnight + ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000)
    }
  }
  return instants
}

const maxOf = (values: ReadonlyArray<number | undefined>): number | undefined => {
  let best: number | undefined
  for (const value of values) if (value !== undefined && (best === undefined || value > best)) best = value
  return best
}

const femto = (usdPerMillion: number): bigint | undefined =>
  Either.getOrUndefined(Schema.decodeEither(FemtoFromUsdPerMillion)(usdPerMillion))

/**
 * The catalogue's price of a model, or `undefined`. With a provider id, the model is
 * looked up under that provider (`openai` + `gpt-4o-mini`); without one, the
 * catalogue matches the name against every provider. `now` picks the price in force.
 * Models without an output rate (embeddings) are charged nothing for output.
 *
 * @since 0.1.0
 */
export const lookup = (
  model: string,
  providerId: string | undefined,
  now: number
): ModelPrice | undefined => {
  const found = calculate(model, providerId, now)
  if (found === null) return undefined
  const samples = [found.model_price]
  for (const at of sampleInstants(found, now)) {
    const other = calculate(model, providerId, at)
    if (other !== null) samples.push(other.model_price)
  }
  const input = maxOf(samples.map((rates) => highest(rates.input_mtok)))
  if (input === undefined) return undefined
  const output = maxOf(samples.map((rates) => highest(rates.output_mtok))) ?? 0
  const cached = maxOf(samples.map((rates) => highest(rates.cache_read_mtok) ?? highest(rates.input_mtok)))
  const inputPerToken = femto(input)
  const outputPerToken = femto(output)
  if (inputPerToken === undefined || outputPerToken === undefined) return undefined
  const cachedInputPerToken = cached === undefined ? undefined : femto(cached)
  return {
    model,
    inputPerToken,
    outputPerToken,
    cachedInputPerToken:
      cachedInputPerToken === undefined || cachedInputPerToken === inputPerToken
        ? Option.none()
        : Option.some(cachedInputPerToken),
    maxOutputTokens: Option.none(),
    source: "catalogue"
  }
}
