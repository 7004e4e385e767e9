/**
 * The server side of the HTTP benchmark, run in its own process so the load generator
 * does not share its CPU: one Hono app with the same mock model twice, bare under
 * `/bare`, guarded under `/guarded`. Prints `READY <port> <key>` when listening.
 */
import { serve } from "@hono/node-server"
import { ManagedRuntime } from "effect"
import { Hono } from "hono"
import { llmGuard } from "../src/adapters/hono.js"
import * as LlmGuard from "../src/http/LlmGuard.js"
import { seed, services } from "./fixture.js"

const runtime = ManagedRuntime.make(services)
const token = await seed(runtime)

const completion = (model: unknown) =>
  JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    created: 1_700_000_000,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "The quick brown fox jumps over the lazy dog. ".repeat(4) },
        finish_reason: "stop"
      }
    ],
    usage: { prompt_tokens: 20, completion_tokens: 44, total_tokens: 64 }
  })

const chunks = (model: unknown) => {
  const event = (delta: object, usage: object | null = null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", model, choices: usage === null ? [{ index: 0, delta }] : [], usage })}\n\n`
  return [
    event({ role: "assistant", content: "" }),
    ...Array.from({ length: 8 }, (_, i) => event({ content: `token${i} ` })),
    event({}, { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 }),
    "data: [DONE]\n\n"
  ].join("")
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The mock model: reads the request, waits `?latency=` ms like a real model would, answers JSON or SSE. */
const model = async (request: Request): Promise<Response> => {
  const body: unknown = await request.json()
  const latency = Number(new URL(request.url).searchParams.get("latency") ?? "0")
  if (latency > 0) await sleep(latency)
  const name = typeof body === "object" && body !== null && "model" in body ? body.model : "bench"
  const stream = typeof body === "object" && body !== null && "stream" in body && body.stream === true
  return stream
    ? new Response(chunks(name), { headers: { "content-type": "text/event-stream" } })
    : new Response(completion(name), { headers: { "content-type": "application/json" } })
}

const guard = LlmGuard.toWebHandler(runtime)
const app = new Hono()
app.post("/bare/v1/chat/completions", (c) => model(c.req.raw))
app.post("/guarded/v1/chat/completions", llmGuard(guard), (c) => model(c.req.raw))

serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
  console.log(`READY ${info.port} ${token}`)
})
