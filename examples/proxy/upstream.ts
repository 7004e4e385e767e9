/**
 * Calls a model's upstream: an OpenAI-compatible API at `api_base`, or the built-in
 * mock. The guard has already authorised the request and removed the caller's key;
 * this adds the upstream's own key and the upstream's name for the model.
 */
import * as http from "node:http"
import * as https from "node:https"
import { Redacted } from "effect"
import type { ModelRoute } from "./config.js"
import * as MockModel from "./mockModel.js"

/** The LLM routes, by the path after `/v1` (or without it, as LiteLLM also serves them). */
export const ENDPOINTS = ["/chat/completions", "/completions", "/embeddings"] as const
export type Endpoint = (typeof ENDPOINTS)[number]

/** The endpoint a request path names, if it is an LLM route. */
export const endpointOf = (pathname: string): Endpoint | undefined => {
  const path = pathname.startsWith("/v1/") ? pathname.slice(3) : pathname
  return ENDPOINTS.find((endpoint) => endpoint === path)
}

// Nothing that identifies the caller to this proxy goes further.
const DROPPED = [
  "cookie",
  "authorization",
  "api-key",
  "x-api-key",
  "host",
  "content-length",
  "accept-encoding"
]

// Kept-alive connections per upstream. `node:http` rather than `fetch`: on the hot
// path it costs a fraction of the CPU.
const agents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true })
}

/** A Node response body as a web stream that reads only as fast as it is consumed. */
const webStream = (res: http.IncomingMessage): ReadableStream<Uint8Array> => {
  let done = false
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        res.on("data", (chunk: Buffer) => {
          if (done) return
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) res.pause()
        })
        res.once("end", () => {
          if (done) return
          done = true
          controller.close()
        })
        // A connection that ends before the body does is a failure, never a short success.
        res.once("close", () => {
          if (done || res.complete) return
          done = true
          controller.error(new Error("the upstream closed the connection mid-response"))
        })
      },
      pull() {
        res.resume()
      },
      cancel() {
        done = true
        res.destroy()
      }
    },
    { highWaterMark: 4 }
  )
}

const NO_BODY = new Set([204, 205, 304])

/** What the guard answers 504 for: the upstream stayed silent too long. */
const timedOut = (ms: number): Error => {
  const error = new Error(`the upstream sent nothing for ${ms} ms`)
  error.name = "TimeoutError"
  return error
}

/**
 * POSTs `body` and resolves with the response as soon as its headers arrive. The
 * connection may stay silent for `timeoutMs` at most, before the answer or inside it:
 * before, the call fails with a `TimeoutError`; inside, the body breaks off.
 */
const post = (
  url: URL,
  headers: Headers,
  body: string,
  signal: AbortSignal,
  timeoutMs: number
): Promise<Response> =>
  new Promise((resolve, reject) => {
    const outgoing: Record<string, string> = {}
    headers.forEach((value, name) => {
      outgoing[name] = value
    })
    outgoing["content-length"] = String(Buffer.byteLength(body))
    // The guard reads usage from the bytes: ask for them uncompressed.
    outgoing["accept-encoding"] = "identity"
    const secure = url.protocol === "https:"
    const options = { method: "POST", headers: outgoing, signal, agent: secure ? agents.https : agents.http }
    const onResponse = (res: http.IncomingMessage) => {
      const received = new Headers()
      for (const [name, value] of Object.entries(res.headers)) {
        if (Array.isArray(value)) for (const item of value) received.append(name, item)
        else if (value !== undefined) received.set(name, value)
      }
      const status = res.statusCode ?? 502
      if (NO_BODY.has(status)) res.resume()
      resolve(
        new Response(NO_BODY.has(status) ? null : webStream(res), {
          status,
          statusText: res.statusMessage ?? "",
          headers: received
        })
      )
    }
    const req = secure ? https.request(url, options, onResponse) : http.request(url, options, onResponse)
    req.once("error", reject)
    req.setTimeout(timeoutMs, () => req.destroy(timedOut(timeoutMs)))
    req.end(body)
  })

const error = (status: number, code: string, message: string): Response =>
  new Response(JSON.stringify({ error: { message, type: "invalid_request_error", code, param: "model" } }), {
    status,
    headers: { "content-type": "application/json" }
  })

/** The body with the upstream's name for the model. */
const renamed = (text: string, model: string): string => {
  const body: unknown = JSON.parse(text)
  return typeof body === "object" && body !== null && !Array.isArray(body)
    ? JSON.stringify({ ...body, model })
    : text
}

/**
 * A forwarder over the model routes: the request goes to the upstream of the model it
 * names.
 */
export const forwarder = (routes: ReadonlyArray<ModelRoute>) => {
  const byName = new Map(routes.map((route) => [route.name, route]))
  return async (request: Request, model: string): Promise<Response> => {
    const route = byName.get(model)
    if (route === undefined) {
      return error(
        400,
        "model_not_found",
        `The model ${JSON.stringify(model)} is not served here; see GET /v1/models.`
      )
    }
    const { target } = route
    if (target._tag === "Mock") return MockModel.answer(request, model)
    const endpoint = endpointOf(new URL(request.url).pathname) ?? "/chat/completions"
    const headers = new Headers(request.headers)
    for (const name of DROPPED) headers.delete(name)
    headers.set("content-type", "application/json")
    if (target.apiKey._tag === "Some")
      headers.set("authorization", `Bearer ${Redacted.value(target.apiKey.value)}`)
    const text = await request.text()
    return post(
      new URL(`${target.apiBase}${endpoint}`),
      headers,
      target.model === model ? text : renamed(text, target.model),
      request.signal,
      target.timeoutMs
    )
  }
}
