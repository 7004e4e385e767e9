/**
 * When the forward answers with a web `Response`, an event stream whose body is already complete when the upstream
 * answers is settled from its usage before it goes out in one piece; a
 * stream still arriving is passed through chunk by chunk as before, every byte
 * unchanged, and settled once it ends (or as `partial` when it breaks off).
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LlmGuard from "../../src/http/LlmGuard.js"
import { SpendLogRepo, TokenEstimator } from "../../src/index.js"
import { makeKey, rowsWithPromptTokens } from "../support/fixtures.js"
import { makeServices } from "../support/runtime.js"

const encoder = new TextEncoder()

/** The SSE events of a completion whose usage says `promptTokens` (so each test finds its own row). */
const events = (promptTokens: number): Array<string> => [
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: "assistant", content: "" } }] })}\n\n`,
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "Hello" } }] })}\n\n`,
  `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: 4 } })}\n\n`,
  "data: [DONE]\n\n"
]

const sse = (body: BodyInit): Response =>
  new Response(body, { headers: { "content-type": "text/event-stream" } })

/** A body whose chunks arrive `delayMs` apart, then end or (with `breakAfter`) fail. */
const arriving = (chunks: ReadonlyArray<string>, delayMs: number, breakAfter?: number) => {
  let sent = 0
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      if (breakAfter !== undefined && sent === breakAfter)
        return controller.error(new Error("connection reset"))
      const chunk = chunks[sent++]
      if (chunk === undefined) return controller.close()
      controller.enqueue(encoder.encode(chunk))
    }
  })
}

describe("the web guard's event streams", () => {
  const runtime = ManagedRuntime.make(Layer.merge(makeServices(), TokenEstimator.layer))
  const guard = LlmGuard.toWebHandler(runtime)
  let token = ""
  beforeAll(async () => {
    token = await runtime.runPromise(makeKey())
  })
  afterAll(() => runtime.dispose())

  const request = () =>
    new Request("http://localhost/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "small", messages: [{ role: "user", content: "Hi" }], stream: true })
    })

  const rowFor = (promptTokens: number) => runtime.runPromise(rowsWithPromptTokens(promptTokens))

  it("a body complete on arrival is settled from its usage before it goes out, whole and unchanged", async () => {
    const sent = events(101)
    const response = await guard(request(), async () => sse(sent.join("")))
    // Settled already: the guard read the whole body before answering.
    const rows = await rowFor(101)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "success", completionTokens: 4 })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    expect(await response.text()).toBe(sent.join(""))
  })

  it("a body still arriving streams chunk by chunk, unchanged, and is settled when it ends", async () => {
    const sent = events(102)
    const response = await guard(request(), async () => sse(arriving(sent, 15)))
    // Not settled before the stream is read: it is charged for what is delivered.
    expect(await rowFor(102)).toHaveLength(0)
    const reader = response.body?.getReader()
    if (reader === undefined) throw new Error("no body")
    const received: Array<string> = []
    const decoder = new TextDecoder()
    for (;;) {
      const next = await reader.read()
      if (next.done) break
      received.push(decoder.decode(next.value))
    }
    expect(received.join("")).toBe(sent.join(""))
    // Delivered as it came: not gathered into one piece.
    expect(received.length).toBeGreaterThan(1)
    await Effect.runPromise(Effect.sleep("20 millis"))
    const rows = await rowFor(102)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "success", completionTokens: 4 })
  })

  it("a stream that breaks off is charged as partial, for what was delivered", async () => {
    const sent = events(103)
    const response = await guard(request(), async () => sse(arriving(sent, 15, 2)))
    await expect(response.text()).rejects.toThrow()
    await Effect.runPromise(Effect.sleep("20 millis"))
    const rows = await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))
    const partial = rows.filter((row) => row.status === "partial")
    expect(partial).toHaveLength(1)
  })
})
