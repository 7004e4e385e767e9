/**
 * Estimates the prompt tokens of an OpenAI-style request before it is sent, so the
 * worst-case cost can be held. Counting uses the `o200k_base` encoding for every
 * model: exact for current OpenAI models and a fair, slightly high estimate for
 * others. The upstream's `usage` settles the real cost afterwards.
 *
 * @since 0.1.0
 */
import { availableParallelism } from "node:os"
import { Context, Effect, Either, Layer, Option, type ParseResult, Schema } from "effect"
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import { InvalidRequest } from "../domain/Errors.js"
import { fromParseError } from "./internal/invalidRequest.js"
import * as TokenCountCache from "./internal/TokenCountCache.js"
import * as TokenCountWorkers from "./internal/TokenCountWorkers.js"

/**
 * What a request asks for, as far as budgets care.
 *
 * @since 0.1.0
 */
export interface Estimate {
  readonly model: string
  readonly promptTokens: number
  /**
   * The most output tokens the request allows, over all its choices:
   * `max_completion_tokens` (else `max_tokens`) times `n`. Zero for embeddings. None
   * when the request sets no cap; then the model's cap times {@link Estimate.choices} binds.
   */
  readonly maxOutputTokens: Option.Option<number>
  /** How many completions the request asks for (`n`, default 1). */
  readonly choices: number
  /** The request's `user` field: the end user it is made for. */
  readonly endUser: Option.Option<string>
  readonly stream: boolean
}

/**
 * Tokens charged for one image part. Image tokens depend on size and detail; this is
 * the most a high-detail image costs on tile-priced models (85 + 8 × 170 = 1445)
 * rounded up to the patch cap of patch-priced ones (1536), so a hold covers any single
 * image on either scheme.
 *
 * @since 0.1.0
 */
export const IMAGE_TOKENS = 1536

/** Per-message framing tokens (`<|start|>role ... <|end|>`), as OpenAI documents. @since 0.1.0 */
export const TOKENS_PER_MESSAGE = 3

/** Tokens that prime the assistant's reply in every chat request. @since 0.1.0 */
export const REPLY_PRIMING_TOKENS = 3

/** A message `name` costs one token beyond its text. @since 0.1.0 */
export const TOKENS_PER_NAME = 1

// Request text may contain special-token spellings such as `<|endoftext|>`; they are
// ordinary text to the upstream, so count them as text instead of throwing.
const AS_TEXT = { disallowedSpecial: new Set<string>() }

/**
 * The tokens of a text in the `o200k_base` encoding.
 *
 * @since 0.1.0
 */
export const countText = (text: string): number => (text.length === 0 ? 0 : countTokens(text, AS_TEXT))

/** Counts the tokens of a text: {@link countText}, or the same count remembered. */
type Count = (text: string) => number

const jsonTokens = (value: unknown, count: Count): number => count(JSON.stringify(value) ?? "")

/**
 * A union's failure reads as one sentence, except inside an array, where the element
 * that failed names a more useful path (`messages.0.content.2.text`).
 */
const unionMessage = (message: string, descend: (actual: unknown) => boolean = Array.isArray) => ({
  message: (issue: ParseResult.ParseIssue) => ({ message, override: !descend(issue.actual) })
})

const optionalNullable = <S extends Schema.Schema.Any>(schema: S, message?: string) =>
  Schema.optionalWith(
    message === undefined ? Schema.NullOr(schema) : Schema.NullOr(schema).annotations(unionMessage(message)),
    { exact: true }
  )

const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
const RefusalPart = Schema.Struct({ type: Schema.Literal("refusal"), refusal: Schema.String })
const ImagePart = Schema.Struct({
  type: Schema.Literal("image_url"),
  image_url: Schema.Struct({ url: Schema.String })
})
const KNOWN_PARTS: ReadonlySet<string> = new Set(["text", "refusal", "image_url"])
/** Audio, files and future part types: counted by their JSON text, a generous bound. */
const OtherPart = Schema.Struct(
  {
    type: Schema.String.pipe(Schema.filter((type) => !KNOWN_PARTS.has(type)))
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)
const hasStringType = (actual: unknown): boolean =>
  typeof actual === "object" && actual !== null && "type" in actual && typeof actual.type === "string"
const Part = Schema.Union(TextPart, RefusalPart, ImagePart, OtherPart).annotations({
  identifier: "ContentPart",
  ...unionMessage("must be a content part: an object with a string type", hasStringType)
})
type Part = typeof Part.Type

const Message = Schema.Struct({
  role: Schema.String,
  content: optionalNullable(
    Schema.Union(Schema.String, Schema.Array(Part)),
    "must be a string, an array of content parts, or null"
  ),
  name: optionalNullable(Schema.String),
  tool_calls: optionalNullable(Schema.Array(Schema.Unknown), "must be an array of tool calls"),
  function_call: optionalNullable(Schema.Unknown),
  tool_call_id: optionalNullable(Schema.String)
}).annotations({ identifier: "ChatMessage", message: () => "must be a message object" })
/** A chat message as the estimator reads it. @since 0.1.0 */
export type ChatMessage = typeof Message.Type

const TokenCap = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))
const TokenIds = Schema.Array(Schema.NonNegativeInt)
const Texts = Schema.Union(Schema.String, Schema.Array(Schema.String), TokenIds, Schema.Array(TokenIds))

const Body = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
  messages: Schema.optionalWith(
    Schema.Array(Message).annotations({ message: () => "must be an array of messages" }),
    { exact: true }
  ),
  prompt: Schema.optionalWith(
    Texts.annotations(unionMessage("must be a string, an array of strings, or token ids")),
    { exact: true }
  ),
  input: Schema.optionalWith(
    Texts.annotations(unionMessage("must be a string, an array of strings, or token ids")),
    { exact: true }
  ),
  tools: optionalNullable(Schema.Array(Schema.Unknown), "must be an array of tools"),
  functions: optionalNullable(Schema.Array(Schema.Unknown), "must be an array of functions"),
  max_completion_tokens: optionalNullable(TokenCap),
  max_tokens: optionalNullable(TokenCap),
  n: optionalNullable(TokenCap),
  user: optionalNullable(Schema.String),
  stream: optionalNullable(Schema.Boolean)
}).annotations({ identifier: "OpenAIRequest", message: () => "the request body must be a JSON object" })
type Body = typeof Body.Type

const decodeBody = Schema.decodeUnknownEither(Body)

const partTokens = (part: Part, count: Count): number => {
  switch (part.type) {
    case "text":
      return "text" in part && typeof part.text === "string" ? count(part.text) : jsonTokens(part, count)
    case "refusal":
      return "refusal" in part && typeof part.refusal === "string"
        ? count(part.refusal)
        : jsonTokens(part, count)
    case "image_url":
      return IMAGE_TOKENS
    default:
      return jsonTokens(part, count)
  }
}

// Roles repeat on every message; their counts are fixed.
const ROLE_TOKENS: ReadonlyMap<string, number> = new Map(
  ["system", "developer", "user", "assistant", "tool", "function"].map((role) => [role, countText(role)])
)

const messageTokens = (message: ChatMessage, count: Count): number => {
  let tokens = TOKENS_PER_MESSAGE + (ROLE_TOKENS.get(message.role) ?? count(message.role))
  const content = message.content
  if (typeof content === "string") tokens += count(content)
  else if (content !== null && content !== undefined)
    for (const part of content) tokens += partTokens(part, count)
  if (typeof message.name === "string") tokens += TOKENS_PER_NAME + count(message.name)
  if (message.tool_calls !== null && message.tool_calls !== undefined) {
    tokens += jsonTokens(message.tool_calls, count)
  }
  if (message.function_call !== null && message.function_call !== undefined) {
    tokens += jsonTokens(message.function_call, count)
  }
  if (typeof message.tool_call_id === "string") tokens += count(message.tool_call_id)
  return tokens
}

/**
 * The prompt tokens of a chat: each message's text and framing, plus the reply
 * priming. Tool-call arguments and names are counted as their JSON text. `count`
 * counts one text ({@link countText} by default).
 *
 * @example
 * countChat([{ role: "user", content: "Hi" }]) // 3 + 1 + 1 + 3 = 8
 * @since 0.1.0
 */
export const countChat = (messages: ReadonlyArray<ChatMessage>, count: Count = countText): number => {
  let tokens = REPLY_PRIMING_TOKENS
  for (const message of messages) tokens += messageTokens(message, count)
  return tokens
}

const textsTokens = (
  value: string | ReadonlyArray<string> | ReadonlyArray<number> | ReadonlyArray<ReadonlyArray<number>>,
  count: Count
) => {
  if (typeof value === "string") return count(value)
  let tokens = 0
  for (const item of value) {
    if (typeof item === "string") tokens += count(item)
    else if (typeof item === "number") tokens += 1
    else tokens += item.length
  }
  return tokens
}

const promptTokens = (kind: "messages" | "prompt" | "input", body: Body, count: Count): number => {
  switch (kind) {
    case "messages":
      return (
        countChat(body.messages ?? [], count) +
        (body.tools === null || body.tools === undefined ? 0 : jsonTokens(body.tools, count)) +
        (body.functions === null || body.functions === undefined ? 0 : jsonTokens(body.functions, count))
      )
    case "prompt":
      return textsTokens(body.prompt ?? "", count)
    case "input":
      return textsTokens(body.input ?? "", count)
  }
}

const kinds = ["messages", "prompt", "input"] as const

const build = (body: Body, count: Count): Either.Either<Estimate, InvalidRequest> => {
  const present = kinds.filter((kind) => body[kind] !== undefined)
  const [kind] = present
  if (kind === undefined || present.length > 1) {
    return Either.left(
      new InvalidRequest({
        path: present[1] ?? "messages",
        detail:
          kind === undefined
            ? "a request needs messages (chat), prompt (completions) or input (embeddings)"
            : `give only one of messages, prompt or input, not ${present.join(" and ")}`
      })
    )
  }
  const choices = kind === "input" ? 1 : (body.n ?? 1)
  const cap = body.max_completion_tokens ?? body.max_tokens
  return Either.right({
    model: body.model,
    promptTokens: promptTokens(kind, body, count),
    maxOutputTokens:
      kind === "input"
        ? Option.some(0)
        : cap === null || cap === undefined
          ? Option.none()
          : Option.some(cap * choices),
    choices,
    endUser: typeof body.user === "string" && body.user.length > 0 ? Option.some(body.user) : Option.none(),
    stream: body.stream ?? false
  })
}

/**
 * Decodes an OpenAI chat, completions or embeddings request body and estimates its
 * tokens. A malformed body is an `InvalidRequest` naming the field, e.g.
 * `messages.0.content`. `count` counts one text ({@link countText} by default).
 *
 * @example
 * estimateBody({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], max_tokens: 50 })
 * // Either.right({ model: "gpt-4o-mini", promptTokens: 8, maxOutputTokens: Option.some(50), ... })
 * @since 0.1.0
 */
export const estimateBody = (
  body: unknown,
  count: Count = countText
): Either.Either<Estimate, InvalidRequest> => Either.flatMap(decode(body), (decoded) => build(decoded, count))

const decode = (body: unknown): Either.Either<Body, InvalidRequest> =>
  Either.mapLeft(decodeBody(body), (error) => fromParseError(error))

/** @since 0.1.0 */
export interface TokenEstimatorShape {
  readonly estimate: (body: unknown) => Effect.Effect<Estimate, InvalidRequest>
}

/** @since 0.1.0 */
export class TokenEstimator extends Context.Tag("teambudget/TokenEstimator")<
  TokenEstimator,
  TokenEstimatorShape
>() {}

/** @since 0.1.0 */
export interface TokenEstimatorOptions {
  /**
   * How many counts of long texts (512 characters or more) to remember, by a digest of
   * the text, never the text itself. A chat resends its history with every turn and
   * tools and system prompts repeat, so a remembered count spares counting them again;
   * the estimate is the same either way. Default 4,096; 0 counts every text every time.
   */
  readonly cachedCounts?: number
  /**
   * Texts of at least this many characters, not remembered, are counted on worker
   * threads, so the event loop serves other requests meanwhile (counting takes about
   * half a microsecond per token). The estimate is the same either way. Default 32,768
   * (a few milliseconds of counting); 0 counts everything on the calling thread.
   */
  readonly workerCountFrom?: number
  /** How many worker threads count. Default: the CPUs less one, from 1 to 4. */
  readonly countWorkers?: number
}

/** @since 0.1.0 */
export const DEFAULT_CACHED_COUNTS = 4096

/** @since 0.1.0 */
export const DEFAULT_WORKER_COUNT_FROM = 32_768

const defaultWorkers = (): number => Math.max(1, Math.min(4, availableParallelism() - 1))

/**
 * The estimator with options. It needs no configuration: the encoding is bundled. Its
 * worker threads, if it started any, stop when the layer's scope closes.
 *
 * @example
 * const estimator = TokenEstimator.layerWith({ cachedCounts: 0, workerCountFrom: 0 })
 * @since 0.1.0
 */
export const layerWith = (options: TokenEstimatorOptions = {}): Layer.Layer<TokenEstimator> =>
  Layer.scoped(
    TokenEstimator,
    Effect.gen(function* () {
      const cache = TokenCountCache.make(countText, options.cachedCounts ?? DEFAULT_CACHED_COUNTS)
      const from = options.workerCountFrom ?? DEFAULT_WORKER_COUNT_FROM
      const workers =
        from > 0
          ? yield* Effect.acquireRelease(
              Effect.sync(() => TokenCountWorkers.make(options.countWorkers ?? defaultWorkers())),
              (pool) => Effect.promise(pool.close)
            )
          : undefined

      // The very long texts not remembered are set aside (as 0) and counted on workers; a
      // prompt's tokens are a sum of its texts' counts, so theirs are added to the estimate.
      const estimate = (body: unknown): Effect.Effect<Estimate, InvalidRequest> => {
        const decoded = decode(body)
        if (Either.isLeft(decoded) || workers === undefined)
          return Either.flatMap(decoded, (b) => build(b, cache.count))
        const aside: Array<{ readonly text: string; readonly remember: (tokens: number) => void }> = []
        const counted = build(decoded.right, (text) => {
          if (text.length < from) return cache.count(text)
          const known = cache.recall(text)
          if (typeof known === "number") return known
          aside.push({ text, remember: known })
          return 0
        })
        if (aside.length === 0 || Either.isLeft(counted)) return counted
        const partial = counted.right
        return Effect.map(
          Effect.promise(() =>
            Promise.all(
              aside.map(({ text, remember }) => {
                // No worker ready yet (they are starting) or one failed: counted here.
                const here = () => countText(text)
                return (workers.count(text) ?? Promise.resolve(here())).catch(here).then((tokens) => {
                  remember(tokens)
                  return tokens
                })
              })
            )
          ),
          (tokens) => ({ ...partial, promptTokens: tokens.reduce((sum, n) => sum + n, partial.promptTokens) })
        )
      }
      return { estimate: (body) => Effect.suspend(() => estimate(body)) }
    })
  )

/**
 * The estimator with the default options: counts of long texts remembered, very long
 * ones counted on worker threads.
 *
 * @example
 * const estimate = yield* TokenEstimator.pipe(Effect.flatMap((t) => t.estimate(body)))
 * @since 0.1.0
 */
export const layer: Layer.Layer<TokenEstimator> = layerWith()
