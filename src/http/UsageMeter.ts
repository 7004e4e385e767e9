/**
 * What an OpenAI-compatible response reports and delivers: its `usage` when it has
 * one, else the text it delivered, counted in tokens, so a response without usage (or
 * cut short) is still charged for what went out.
 *
 * @since 0.1.0
 */
import { Option, Predicate } from "effect"
import type { Usage } from "../services/Pricing.js"
import { countText } from "../services/TokenEstimator.js"

/** @since 0.1.0 */
export interface UsageMeter {
  /** One SSE `data` payload (a chunk of a streamed response). */
  readonly observeEvent: (data: string) => void
  /** A whole JSON response body; false when it is not JSON at all. */
  readonly observeBody: (text: string) => boolean
  /** The usage the upstream reported, when it did. */
  readonly reported: () => Option.Option<Usage>
  /** Tokens of the content delivered so far (message text, tool-call arguments, completions). */
  readonly deliveredTokens: () => number
}

const count = (u: unknown): number | undefined =>
  typeof u === "number" && Number.isSafeInteger(u) && u >= 0 ? u : undefined

/**
 * OpenAI's `usage` object: `prompt_tokens`, `completion_tokens` (absent for
 * embeddings), `prompt_tokens_details.cached_tokens`.
 *
 * @since 0.1.0
 */
export const parseUsage = (u: unknown): Option.Option<Usage> => {
  if (!Predicate.isRecord(u)) return Option.none()
  const promptTokens = count(u.prompt_tokens)
  if (promptTokens === undefined) return Option.none()
  const completionTokens = u.completion_tokens === undefined ? 0 : count(u.completion_tokens)
  if (completionTokens === undefined) return Option.none()
  const details = u.prompt_tokens_details
  const cached = Predicate.isRecord(details) ? count(details.cached_tokens) : undefined
  return Option.some(
    cached === undefined || cached === 0 || cached > promptTokens
      ? { promptTokens, completionTokens }
      : { promptTokens, completionTokens, cachedPromptTokens: cached }
  )
}

// Text is counted in slices of this many characters, so memory stays bounded on
// long streams and the tokenizer runs only where a count is needed.
const SLICE = 64 * 1024

// Stream events are kept as they came, up to this many characters, and parsed only
// when needed: a stream that ends with its usage has only its last events read.
const UNREAD = 64 * 1024

/**
 * A fresh meter.
 *
 * @example
 * const meter = UsageMeter.make()
 * meter.observeEvent('{"choices":[{"delta":{"content":"Hi"}}],"usage":null}')
 * meter.deliveredTokens() // 1
 * @since 0.1.0
 */
export const make = (): UsageMeter => {
  let usage = Option.none<Usage>()
  let pending: Array<string> = []
  let pendingLength = 0
  let counted = 0
  let unread: Array<string> = []
  let unreadLength = 0

  const addText = (text: unknown) => {
    if (typeof text !== "string" || text.length === 0) return
    pending.push(text)
    pendingLength += text.length
    if (pendingLength >= SLICE) flush()
  }

  const flush = () => {
    if (pending.length === 0) return
    counted += countText(pending.join(""))
    pending = []
    pendingLength = 0
  }

  const addToolCalls = (calls: unknown) => {
    if (!Array.isArray(calls)) return
    for (const call of calls) {
      if (!Predicate.isRecord(call) || !Predicate.isRecord(call.function)) continue
      addText(call.function.name)
      addText(call.function.arguments)
    }
  }

  const addChoices = (choices: unknown, part: "delta" | "message") => {
    if (!Array.isArray(choices)) return
    for (const choice of choices) {
      if (!Predicate.isRecord(choice)) continue
      addText(choice.text)
      const content = choice[part]
      if (!Predicate.isRecord(content)) continue
      addText(content.content)
      addText(content.refusal)
      addText(content.reasoning_content)
      addToolCalls(content.tool_calls)
      if (Predicate.isRecord(content.function_call)) addText(content.function_call.arguments)
    }
  }

  const parse = (text: string): { readonly parsed: unknown } | undefined => {
    try {
      return { parsed: JSON.parse(text) }
    } catch {
      return undefined
    }
  }

  const observe = (text: string, part: "delta" | "message"): boolean => {
    const result = parse(text)
    if (result === undefined) return false
    const parsed = result.parsed
    if (!Predicate.isRecord(parsed)) return true
    const reported = parseUsage(parsed.usage)
    if (Option.isSome(reported)) usage = reported
    addChoices(parsed.choices, part)
    return true
  }

  /** Reads the events kept unread, in order, as if each had been read as it came. */
  const readAll = () => {
    if (unread.length === 0) return
    const events = unread
    unread = []
    unreadLength = 0
    for (const data of events) observe(data, "delta")
  }

  return {
    observeEvent: (data) => {
      if (data === "[DONE]") return
      unread.push(data)
      unreadLength += data.length
      if (unreadLength >= UNREAD) readAll()
    },
    observeBody: (text) => {
      readAll()
      return observe(text, "message")
    },
    reported: () => {
      // The last event with a valid usage wins: read from the end, and stop there.
      for (let i = unread.length - 1; i >= 0; i--) {
        const result = parse(unread[i] ?? "")
        if (result === undefined || !Predicate.isRecord(result.parsed)) continue
        const reported = parseUsage(result.parsed.usage)
        if (Option.isSome(reported)) return reported
      }
      return usage
    },
    deliveredTokens: () => {
      readAll()
      flush()
      return counted
    }
  }
}
