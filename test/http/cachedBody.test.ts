/**
 * Hono on `@hono/node-server`: a handler's response given as a string or bytes is
 * read from the server's cache, never rebuilt as the runtime's own `Response`, and is
 * metered, settled and passed on exactly as one read through the `Response` API.
 */
import { Server } from "node:http"
import { serve } from "@hono/node-server"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Hono } from "hono"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { llmGuard } from "../../src/adapters/hono.js"
import * as CachedBody from "../../src/http/CachedBody.js"
import * as LlmGuard from "../../src/http/LlmGuard.js"
import { SpendLogRepo, TokenEstimator } from "../../src/index.js"
import { makeKey, rowsWithPromptTokens } from "../support/fixtures.js"
import { close } from "../support/listen.js"
import { makeServices } from "../support/runtime.js"

// The runtime's own Response, before the server replaces the global one.
const NativeResponse = globalThis.Response

const completion = (promptTokens: number): string =>
  JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello there" }, finish_reason: "stop" }],
    usage: { prompt_tokens: promptTokens, completion_tokens: 7, total_tokens: promptTokens + 7 }
  })

const events = (promptTokens: number): string =>
  [
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "Hello" } }] })}\n\n`,
    `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: 3 } })}\n\n`,
    "data: [DONE]\n\n"
  ].join("")

const holdsItsCache = (response: Response): boolean =>
  Object.getOwnPropertySymbols(response).some((symbol) => symbol.description === "cache")

describe("the guard over @hono/node-server's responses", () => {
  const runtime = ManagedRuntime.make(Layer.merge(makeServices(), TokenEstimator.layer))
  const guard = LlmGuard.toWebHandler(runtime)
  const handed: Array<Response> = []
  const answers = new Map<string, () => Response>()
  let token = ""
  let url = ""
  let server: Server | undefined

  beforeAll(async () => {
    token = await runtime.runPromise(makeKey())
    const app = new Hono()
    app.post("/v1/:case", llmGuard(guard), (c) => {
      const answer = answers.get(c.req.param("case"))
      if (answer === undefined) throw new Error("no such case")
      const response = answer()
      handed.push(response)
      return response
    })
    url = await new Promise<string>((resolve) => {
      const started = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
        if (started instanceof Server) server = started
        resolve(`http://127.0.0.1:${info.port}`)
      })
    })
  })
  afterAll(async () => {
    if (server !== undefined) await close(server)
    await runtime.dispose()
  })

  const call = (name: string, stream = false) =>
    fetch(`${url}/v1/${name}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "small", messages: [{ role: "user", content: "Hi" }], stream })
    })

  const rowsFor = (promptTokens: number) => runtime.runPromise(rowsWithPromptTokens(promptTokens))

  it("a JSON answer given as a string is settled from its usage and goes out unchanged, never rebuilt", async () => {
    answers.set(
      "string",
      () => new Response(completion(211), { headers: { "content-type": "application/json" } })
    )
    const response = await call("string")
    expect(response.status).toBe(200)
    expect(await response.text()).toBe(completion(211))
    expect(response.headers.get("content-type")).toBe("application/json")
    const rows = await rowsFor(211)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: "success", completionTokens: 7 })
    const last = handed.at(-1)
    expect(last !== undefined && holdsItsCache(last)).toBe(true)
  })

  it("an answer given as bytes is read the same way", async () => {
    answers.set(
      "bytes",
      () =>
        new Response(new TextEncoder().encode(completion(212)), {
          headers: { "content-type": "application/json" }
        })
    )
    const response = await call("bytes")
    expect(await response.text()).toBe(completion(212))
    expect(await rowsFor(212)).toMatchObject([{ status: "success", completionTokens: 7 }])
    const last = handed.at(-1)
    expect(last !== undefined && holdsItsCache(last)).toBe(true)
  })

  it("a whole event stream is settled from its usage and goes out as a stream's headers, unchanged", async () => {
    answers.set("sse", () => new Response(events(213), { headers: { "content-type": "text/event-stream" } }))
    const response = await call("sse", true)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    expect(await response.text()).toBe(events(213))
    expect(await rowsFor(213)).toMatchObject([{ status: "success", completionTokens: 3 }])
  })

  it("an error answer passes through as it came, and charges nothing", async () => {
    const refusal = JSON.stringify({ error: { message: "slow down", type: "rate_limit" } })
    answers.set(
      "refused",
      () =>
        new Response(refusal, {
          status: 429,
          headers: { "content-type": "application/json", "retry-after": "3" }
        })
    )
    const before = (await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))).length
    const response = await call("refused")
    expect(response.status).toBe(429)
    expect(response.headers.get("retry-after")).toBe("3")
    expect(await response.text()).toBe(refusal)
    const after = (await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))).length
    expect(after).toBe(before)
  })

  it("a 200 answer that is not JSON is a 502, and charges nothing", async () => {
    answers.set(
      "broken",
      () => new Response("<html>oops</html>", { headers: { "content-type": "application/json" } })
    )
    const response = await call("broken")
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ error: { type: "upstream_error" } })
  })

  it("reads nothing from a response without that cache, or with one of another shape", () => {
    expect(CachedBody.bytesOf(new NativeResponse("{}"))).toBeUndefined()
    const odd = new NativeResponse("{}")
    Object.defineProperty(odd, Symbol("cache"), { value: { body: "{}" } })
    expect(CachedBody.bytesOf(odd)).toBeUndefined()
    const wrongStatus = new NativeResponse("{}", { status: 201 })
    Object.defineProperty(wrongStatus, Symbol("cache"), { value: [200, "{}", {}] })
    expect(CachedBody.bytesOf(wrongStatus)).toBeUndefined()
    const held = new NativeResponse("{}")
    Object.defineProperty(held, Symbol("cache"), { value: [200, '{"a":1}', {}] })
    expect(new TextDecoder().decode(CachedBody.bytesOf(held))).toBe('{"a":1}')
  })
})
