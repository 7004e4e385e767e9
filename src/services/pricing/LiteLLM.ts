/**
 * Prices from LiteLLM's `model_prices_and_context_window.json`. The file is large and
 * community-edited, so one malformed entry is skipped and counted, never fatal.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { Effect, Either, Option, Predicate, Schema } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"
import type { ModelPrice } from "../Pricing.js"
import { FemtoFromUsdPerToken } from "./femto.js"

/**
 * The token-priced models of a LiteLLM price file.
 *
 * @since 0.1.0
 */
export interface LiteLLMPrices {
  readonly models: ReadonlyMap<string, ModelPrice>
  /** Names of the entries that could not be decoded and were skipped. */
  readonly invalid: ReadonlyArray<string>
}

const OptionalPrice = Schema.optionalWith(Schema.NullOr(FemtoFromUsdPerToken), { exact: true })
const OptionalTokens = Schema.optionalWith(Schema.NullOr(Schema.NonNegativeInt), { exact: true })

const Entry = Schema.Struct({
  input_cost_per_token: OptionalPrice,
  output_cost_per_token: OptionalPrice,
  cache_read_input_token_cost: OptionalPrice,
  max_output_tokens: OptionalTokens,
  max_tokens: OptionalTokens,
  mode: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true })
})
type Entry = typeof Entry.Type

const decodeEntry = Schema.decodeUnknownEither(Entry)

const positive = (value: number | null | undefined): Option.Option<number> =>
  value === null || value === undefined || value <= 0 ? Option.none() : Option.some(value)

/**
 * Entries priced per image, per second or per query have no token prices and are
 * left to the other sources. Embeddings produce no output, so a missing output
 * price is zero for them; for any other mode it makes the entry unpriced rather than
 * half-priced.
 */
const toModelPrice = (model: string, entry: Entry): ModelPrice | undefined => {
  const input = entry.input_cost_per_token
  if (input === null || input === undefined) return undefined
  const output = entry.output_cost_per_token ?? (entry.mode === "embedding" ? 0n : undefined)
  if (output === null || output === undefined) return undefined
  return {
    model,
    inputPerToken: input,
    outputPerToken: output,
    cachedInputPerToken: Option.fromNullable(entry.cache_read_input_token_cost),
    maxOutputTokens: Option.orElse(positive(entry.max_output_tokens), () => positive(entry.max_tokens)),
    source: "litellm"
  }
}

/**
 * Reads the parsed JSON of a LiteLLM price file. Fails only when the whole value is
 * not an object of entries.
 *
 * @example
 * const prices = yield* fromLiteLLMJson({ "my-model": { input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 } })
 * @since 0.1.0
 */
export const fromLiteLLMJson = (json: unknown): Effect.Effect<LiteLLMPrices, InvalidRequest> =>
  Effect.suspend(() => {
    if (!Predicate.isRecord(json)) {
      return Effect.fail(
        new InvalidRequest({
          path: "",
          detail: "a LiteLLM price file must be a JSON object of model entries"
        })
      )
    }
    const models = new Map<string, ModelPrice>()
    const invalid: Array<string> = []
    for (const [model, value] of Object.entries(json)) {
      if (model === "sample_spec") continue
      const decoded = decodeEntry(value)
      if (Either.isLeft(decoded)) {
        invalid.push(model)
        continue
      }
      const price = toModelPrice(model, decoded.right)
      if (price !== undefined) models.set(model, price)
    }
    return Effect.succeed({ models, invalid })
  })

const describe = (cause: unknown): string =>
  cause instanceof Error
    ? "code" in cause && typeof cause.code === "string"
      ? cause.code
      : cause.message
    : "unknown error"

/**
 * Loads a LiteLLM `model_prices_and_context_window.json` from disk.
 *
 * @example
 * const prices = yield* loadLiteLLMPrices("./model_prices_and_context_window.json")
 * const pricing = yield* Pricing.make({ litellm: prices })
 * @since 0.1.0
 */
export const loadLiteLLMPrices = (path: string): Effect.Effect<LiteLLMPrices, InvalidRequest> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (cause) =>
      new InvalidRequest({
        path: "",
        detail: `cannot read the LiteLLM price file ${path}: ${describe(cause)}`
      })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: (): unknown => JSON.parse(text),
        catch: (cause) =>
          new InvalidRequest({
            path: "",
            detail: `the LiteLLM price file ${path} is not JSON: ${describe(cause)}`
          })
      })
    ),
    Effect.flatMap(fromLiteLLMJson),
    Effect.withSpan("Pricing.loadLiteLLMPrices", { attributes: { path } })
  )
