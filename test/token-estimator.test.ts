import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as fc from "fast-check"
import { encode } from "gpt-tokenizer/encoding/o200k_base"
import type { InvalidRequest } from "../src/domain/Errors.js"
import * as TokenEstimator from "../src/services/TokenEstimator.js"

const { countText, estimateBody, IMAGE_TOKENS, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE, TOKENS_PER_NAME } =
  TokenEstimator

const ok = (body: unknown): TokenEstimator.Estimate => {
  const result = estimateBody(body)
  if (Either.isLeft(result)) throw new Error(`unexpected refusal: ${result.left.message}`)
  return result.right
}

const refused = (body: unknown): InvalidRequest => {
  const result = estimateBody(body)
  if (Either.isRight(result)) throw new Error("expected a refusal")
  return result.left
}

const chat = (...messages: ReadonlyArray<unknown>) => ({ model: "gpt-4o-mini", messages })
const user = (content: unknown) => ({ role: "user", content })

describe("TokenEstimator: counting", () => {
  it("counts text with the o200k_base encoding", () => {
    const text = "The quick brown fox jumps over the lazy dog."
    expect(countText(text)).toBe(encode(text).length)
    expect(countText("")).toBe(0)
    // Special-token spellings are ordinary text in a request, not an error.
    expect(countText("end <|endoftext|> here")).toBeGreaterThan(3)
  })

  it("adds OpenAI's per-message framing and reply priming", () => {
    const one = ok(chat(user("Hi")))
    expect(one.promptTokens).toBe(
      TOKENS_PER_MESSAGE + countText("user") + countText("Hi") + REPLY_PRIMING_TOKENS
    )
    expect(one.promptTokens).toBe(8)

    const two = ok(chat({ role: "system", content: "Be brief." }, user("Hi")))
    expect(two.promptTokens - one.promptTokens).toBe(
      TOKENS_PER_MESSAGE + countText("system") + countText("Be brief.")
    )
    // An empty conversation still primes the reply.
    expect(ok(chat()).promptTokens).toBe(REPLY_PRIMING_TOKENS)
  })

  it("grows with the text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ minLength: 1, maxLength: 200 }), (a, b) => {
        const shorter = ok(chat(user(a))).promptTokens
        const longer = ok(chat(user(a), user(b))).promptTokens
        expect(longer).toBeGreaterThan(shorter)
        expect(ok(chat(user(`${a} ${b}`))).promptTokens).toBeGreaterThanOrEqual(shorter)
      })
    )
  })

  it("counts a message's name and its tool calls as their JSON text", () => {
    const plain = ok(chat({ role: "assistant", content: null })).promptTokens
    const named = ok(chat({ role: "assistant", content: null, name: "planner" })).promptTokens
    expect(named - plain).toBe(TOKENS_PER_NAME + countText("planner"))

    const toolCalls = [
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }
    ]
    const calling = ok(chat({ role: "assistant", content: null, tool_calls: toolCalls })).promptTokens
    expect(calling - plain).toBe(countText(JSON.stringify(toolCalls)))

    const answer = ok(chat({ role: "tool", content: "sunny", tool_call_id: "call_1" })).promptTokens
    expect(answer).toBe(
      REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + countText("tool") + countText("sunny") + countText("call_1")
    )
  })

  it("counts request-level tool definitions", () => {
    const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }]
    const without = ok(chat(user("Hi"))).promptTokens
    const withTools = ok({ ...chat(user("Hi")), tools }).promptTokens
    expect(withTools - without).toBe(countText(JSON.stringify(tools)))
  })

  it("counts text parts, a fixed amount per image, and other parts by their JSON", () => {
    const parts = ok(
      chat(
        user([
          { type: "text", text: "What is in this picture?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "high" } }
        ])
      )
    ).promptTokens
    expect(parts).toBe(
      REPLY_PRIMING_TOKENS +
        TOKENS_PER_MESSAGE +
        countText("user") +
        countText("What is in this picture?") +
        IMAGE_TOKENS
    )
    const audio = { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }
    expect(ok(chat(user([audio]))).promptTokens).toBe(
      REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + countText("user") + countText(JSON.stringify(audio))
    )
  })

  it("counts completions prompts and embeddings inputs, including token ids", () => {
    expect(ok({ model: "gpt-3.5-turbo-instruct", prompt: "Say hi" }).promptTokens).toBe(countText("Say hi"))
    expect(ok({ model: "gpt-3.5-turbo-instruct", prompt: ["a b", "c"] }).promptTokens).toBe(
      countText("a b") + countText("c")
    )
    expect(ok({ model: "text-embedding-3-small", input: [1, 2, 3] }).promptTokens).toBe(3)
    expect(ok({ model: "text-embedding-3-small", input: [[1, 2], [3]] }).promptTokens).toBe(3)
  })
})

describe("TokenEstimator: request fields", () => {
  it("prefers max_completion_tokens over max_tokens and multiplies by n", () => {
    expect(ok({ ...chat(user("x")), max_tokens: 100 }).maxOutputTokens).toEqual(Option.some(100))
    expect(ok({ ...chat(user("x")), max_tokens: 100, max_completion_tokens: 30 }).maxOutputTokens).toEqual(
      Option.some(30)
    )
    const twice = ok({ ...chat(user("x")), max_completion_tokens: 30, n: 2 })
    expect(twice.maxOutputTokens).toEqual(Option.some(60))
    expect(twice.choices).toBe(2)
    expect(ok({ ...chat(user("x")), max_tokens: null }).maxOutputTokens).toEqual(Option.none())
    expect(ok(chat(user("x"))).maxOutputTokens).toEqual(Option.none())
  })

  it("reads the end user and the stream flag", () => {
    const streamed = ok({ ...chat(user("x")), user: "customer-7", stream: true })
    expect(streamed.endUser).toEqual(Option.some("customer-7"))
    expect(streamed.stream).toBe(true)
    const plain = ok({ ...chat(user("x")), user: "" })
    expect(plain.endUser).toEqual(Option.none())
    expect(plain.stream).toBe(false)
    expect(plain.model).toBe("gpt-4o-mini")
  })

  it("embeddings have no output", () => {
    const estimate = ok({ model: "text-embedding-3-small", input: ["hello", "world"], max_tokens: 10, n: 3 })
    expect(estimate.maxOutputTokens).toEqual(Option.some(0))
    expect(estimate.choices).toBe(1)
  })
})

describe("TokenEstimator: malformed bodies", () => {
  const cases: ReadonlyArray<readonly [string, unknown, string]> = [
    ["not an object", null, ""],
    ["an array", [], ""],
    ["no model", { messages: [] }, "model"],
    ["an empty model", { model: "", messages: [] }, "model"],
    ["messages not an array", { model: "m", messages: "hi" }, "messages"],
    ["a message that is not an object", { model: "m", messages: [5] }, "messages.0"],
    ["a message without a role", { model: "m", messages: [{ content: "x" }] }, "messages.0.role"],
    ["content of the wrong type", chat(user("ok"), user(5)), "messages.1.content"],
    ["content that is an object", chat(user({ text: "x" })), "messages.0.content"],
    ["a part that is a string", chat(user(["hi"])), "messages.0.content.0"],
    ["a part without a type", chat(user([{ text: "hi" }])), "messages.0.content.0"],
    [
      "a text part without text",
      chat(user([{ type: "text", text: "a" }, { type: "text" }])),
      "messages.0.content.1.text"
    ],
    [
      "an image without a url",
      chat(user([{ type: "image_url", image_url: {} }])),
      "messages.0.content.0.image_url.url"
    ],
    ["a name that is a number", chat({ role: "user", content: "x", name: 3 }), "messages.0.name"],
    [
      "tool calls that are not an array",
      chat({ role: "assistant", tool_calls: {} }),
      "messages.0.tool_calls"
    ],
    ["a zero max_tokens", { ...chat(user("x")), max_tokens: 0 }, "max_tokens"],
    [
      "a fractional max_completion_tokens",
      { ...chat(user("x")), max_completion_tokens: 1.5 },
      "max_completion_tokens"
    ],
    ["a string max_tokens", { ...chat(user("x")), max_tokens: "100" }, "max_tokens"],
    ["a string stream flag", { ...chat(user("x")), stream: "yes" }, "stream"],
    ["a numeric user", { ...chat(user("x")), user: 7 }, "user"],
    ["a prompt with a number in it", { model: "m", prompt: ["a", 3] }, "prompt.1"],
    ["an input that is an object", { model: "m", input: { text: "x" } }, "input"],
    ["a negative token id", { model: "m", input: [[1, -1]] }, "input.0.1"],
    ["no messages, prompt or input", { model: "m" }, "messages"],
    ["both prompt and input", { model: "m", prompt: "a", input: "b" }, "input"]
  ]

  for (const [name, body, path] of cases) {
    it(`refuses ${name} at "${path}"`, () => {
      const error = refused(body)
      expect(error._tag).toBe("InvalidRequest")
      expect(error.path).toBe(path)
      expect(error.detail.length).toBeGreaterThan(0)
      expect(error.detail.length).toBeLessThan(200)
    })
  }
})

describe("TokenEstimator: layer", () => {
  it.effect("estimates through the service", () =>
    Effect.gen(function* () {
      const estimator = yield* TokenEstimator.TokenEstimator
      const estimate = yield* estimator.estimate({ ...chat(user("Hi")), max_tokens: 5 })
      expect(estimate.promptTokens).toBe(8)
      const error = yield* Effect.flip(estimator.estimate({ model: "m", messages: [{ role: 1 }] }))
      expect(error.path).toBe("messages.0.role")
    }).pipe(Effect.provide(TokenEstimator.layer))
  )
})
