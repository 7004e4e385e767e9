/**
 * The built-in mock model: answers chat completions, completions and embeddings in
 * process, streamed or not, with real token counts in `usage`. It lets the proxy run
 * offline, and makes every budget visible without a provider key.
 */
import { DateTime, Either, Option } from "effect"
import { TokenEstimator } from "../../src/index.js"

const REPLY =
  "Hello from the teambudget mock model. It answers offline, so you can try keys, budgets and " +
  "limits before adding a provider. Every reply is counted and charged like a real one."

const EMBEDDING_DIMENSIONS = 8

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

const REPLY_TOKENS = TokenEstimator.countText(REPLY)

/** The reply, cut to at most `cap` tokens, and its token count. */
const replyWithin = (cap: Option.Option<number>): { readonly text: string; readonly tokens: number } => {
  if (Option.isNone(cap) || cap.value >= REPLY_TOKENS) return { text: REPLY, tokens: REPLY_TOKENS }
  let text = ""
  for (const word of REPLY.split(" ")) {
    const next = text === "" ? word : `${text} ${word}`
    if (TokenEstimator.countText(next) > cap.value) break
    text = next
  }
  return { text, tokens: TokenEstimator.countText(text) }
}

/** A deterministic unit vector per text, so equal inputs embed equally. */
const embed = (text: string): ReadonlyArray<number> => {
  const values = Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => {
    let h = 2166136261 ^ i
    for (let c = 0; c < text.length; c++) h = Math.imul(h ^ text.charCodeAt(c), 16777619)
    return ((h >>> 0) / 0xffffffff) * 2 - 1
  })
  const norm = Math.sqrt(values.reduce((sum, v) => sum + v * v, 0)) || 1
  return values.map((v) => Number((v / norm).toFixed(6)))
}

const textsOf = (input: unknown): ReadonlyArray<string> =>
  typeof input === "string"
    ? [input]
    : Array.isArray(input)
      ? input.map((item) => (typeof item === "string" ? item : JSON.stringify(item)))
      : []

const usageOf = (promptTokens: number, completionTokens: number) => ({
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
  total_tokens: promptTokens + completionTokens
})

const sse = (events: ReadonlyArray<unknown>): Response => {
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const event of events) controller.enqueue(encoder.encode(`data: ${JSON.stringify(event)}\n\n`))
      controller.enqueue(encoder.encode("data: [DONE]\n\n"))
      controller.close()
    }
  })
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" }
  })
}

/** One streamed event of a chat completion (`delta`) or a completion (`text`). */
type Chunk = (content: string | undefined, finish: string | null) => Record<string, unknown>

const streamed = (
  chunk: Chunk,
  frame: Record<string, unknown>,
  text: string,
  includeUsage: boolean,
  usage: ReturnType<typeof usageOf>
): Response => {
  const events: Array<unknown> = [chunk("", null)]
  for (const word of text.split(/(?<= )/)) events.push(chunk(word, null))
  events.push(chunk(undefined, "stop"))
  if (includeUsage) {
    events.push({ ...frame, choices: [], usage })
  }
  return sse(events)
}

/**
 * Answers an OpenAI-style request as the model `model`, by the path of its URL.
 */
export const answer = async (request: Request, model: string): Promise<Response> => {
  const body: unknown = await request.json().catch(() => undefined)
  if (!isRecord(body)) {
    return json(400, {
      error: {
        message: "The body must be a JSON object.",
        type: "invalid_request_error",
        code: null,
        param: null
      }
    })
  }
  const estimate = TokenEstimator.estimateBody(body)
  const promptTokens = Either.match(estimate, { onLeft: () => 0, onRight: (e) => e.promptTokens })
  const cap = Either.match(estimate, {
    onLeft: () => Option.none<number>(),
    onRight: (e) => e.maxOutputTokens
  })
  const path = new URL(request.url).pathname
  const id = `mock-${crypto.randomUUID()}`
  const created = Math.floor(DateTime.toEpochMillis(DateTime.unsafeNow()) / 1000)

  if (path.endsWith("/embeddings")) {
    const texts = textsOf(body.input)
    return json(200, {
      object: "list",
      model,
      data: texts.map((text, index) => ({ object: "embedding", index, embedding: embed(text) })),
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens }
    })
  }

  const { text, tokens: completionTokens } = replyWithin(cap)
  const chat = path.endsWith("/chat/completions")
  const object = chat ? "chat.completion" : "text_completion"
  if (body.stream === true) {
    const options = body.stream_options
    const includeUsage = isRecord(options) && options.include_usage === true
    const frame = { id, object: chat ? "chat.completion.chunk" : "text_completion", created, model }
    const chunk: Chunk = chat
      ? (content, finish) => ({
          ...frame,
          choices: [
            {
              index: 0,
              delta:
                content === undefined ? {} : content === "" ? { role: "assistant", content } : { content },
              finish_reason: finish
            }
          ]
        })
      : (content, finish) => ({
          ...frame,
          choices: [{ index: 0, text: content ?? "", finish_reason: finish }]
        })
    return streamed(chunk, frame, text, includeUsage, usageOf(promptTokens, completionTokens))
  }
  const choice = chat
    ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }
    : { index: 0, text, finish_reason: "stop", logprobs: null }
  return json(200, {
    id,
    object,
    created,
    model,
    choices: [choice],
    usage: usageOf(promptTokens, completionTokens)
  })
}
