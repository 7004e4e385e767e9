/**
 * Calls a model's upstream: an OpenAI-compatible API at `api_base`, or the built-in
 * mock. The guard has already authorised the request and removed the caller's key;
 * this adds the upstream's own key and the upstream's name for the model.
 */
import * as http from "node:http"
import * as https from "node:https"
import { Readable } from "node:stream"
import { Redacted } from "effect"
import type { Exchange } from "../../src/index.js"
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

const NO_BODY = new Set([204, 205, 304])

/** What the guard answers 504 for: the upstream stayed silent too long. */
const timedOut = (ms: number): Error => {
  const error = new Error(`the upstream sent nothing for ${ms} ms`)
  error.name = "TimeoutError"
  return error
}

/**
 * POSTs `body` and resolves with the answer as soon as its headers arrive; its body
 * then streams to the client as it comes. The connection may stay silent for
 * `timeoutMs` at most, before the answer or inside it: before, the call fails with a
 * `TimeoutError`; inside, the body breaks off.
 */
const post = (
  url: URL,
  headers: Record<string, string>,
  body: string,
  onAbandoned: (cancel: () => void) => void,
  timeoutMs: number
): Promise<Exchange.NodeAnswer> =>
  new Promise((resolve, reject) => {
    headers["content-length"] = String(Buffer.byteLength(body))
    // The guard reads usage from the bytes: ask for them uncompressed.
    headers["accept-encoding"] = "identity"
    const secure = url.protocol === "https:"
    const options = { method: "POST", headers, agent: secure ? agents.https : agents.http }
    const onResponse = (res: http.IncomingMessage) => {
      const status = res.statusCode ?? 502
      if (NO_BODY.has(status)) res.resume()
      resolve({ status, statusText: res.statusMessage ?? "", headers: res.headers, body: res })
    }
    const req = secure ? https.request(url, options, onResponse) : http.request(url, options, onResponse)
    req.once("error", reject)
    req.setTimeout(timeoutMs, () => req.destroy(timedOut(timeoutMs)))
    onAbandoned(() => req.destroy())
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

async function* chunksOf(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (body === null) return
  const reader = body.getReader()
  for (;;) {
    const next = await reader.read()
    if (next.done) return
    yield next.value
  }
}

/** A web answer (the mock model's, a refusal) in the form the guard's Node contract takes. */
const toNode = (response: Response): Exchange.NodeAnswer => {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return {
    status: response.status,
    statusText: response.statusText,
    headers,
    body: Readable.from(chunksOf(response.body))
  }
}

/**
 * A forwarder over the model routes, on Node's `http` client: the request goes to the
 * upstream of the model it names.
 */
export const forwarder = (routes: ReadonlyArray<ModelRoute>) => {
  const byName = new Map(routes.map((route) => [route.name, route]))
  // Parsed once per upstream address, not once per call.
  const urls = new Map<string, URL>()
  return async (upstream: Exchange.NodeUpstream, model: string): Promise<Exchange.NodeAnswer> => {
    const route = byName.get(model)
    if (route === undefined) {
      return toNode(
        error(
          400,
          "model_not_found",
          `The model ${JSON.stringify(model)} is not served here; see GET /v1/models.`
        )
      )
    }
    const { target } = route
    const path = upstream.url.split("?")[0] ?? "/"
    if (target._tag === "Mock") {
      const request = new Request(`http://mock${upstream.url}`, {
        method: upstream.method,
        headers: upstream.headers.map(([name, value]): [string, string] => [name, value]),
        body: upstream.body
      })
      return toNode(await MockModel.answer(request, model))
    }
    const endpoint = endpointOf(path) ?? "/chat/completions"
    const headers: Record<string, string> = {}
    for (const [name, value] of upstream.headers) if (!DROPPED.includes(name)) headers[name] = value
    headers["content-type"] = "application/json"
    if (target.apiKey._tag === "Some")
      headers["authorization"] = `Bearer ${Redacted.value(target.apiKey.value)}`
    const address = `${target.apiBase}${endpoint}`
    let url = urls.get(address)
    if (url === undefined) {
      url = new URL(address)
      urls.set(address, url)
    }
    return post(
      url,
      headers,
      target.model === model ? upstream.body : renamed(upstream.body, target.model),
      upstream.onAbandoned,
      target.timeoutMs
    )
  }
}
