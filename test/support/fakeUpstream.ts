/**
 * An OpenAI-compatible upstream on 127.0.0.1 (a real `node:http` server), steered per
 * request by headers the test client sends (they reach it through the guard):
 * - `x-fake-status: 500`: an error response;
 * - `x-fake-usage: 7,13`: the prompt and completion tokens it reports;
 * - `x-fake-chunks: 20` and `x-fake-delay-ms: 50`: a longer, slower stream;
 * - `x-fake-no-usage: 1`: never reports usage;
 * - `x-fake-drop: 1`: drops the connection without answering;
 * - `x-fake-hang: 1`: never answers (until the caller gives up);
 * - `x-fake-malformed: 1`: answers 200 `application/json` with a body that is not JSON;
 * - `x-fake-reset-after: N`: sends the headers and N bytes of the JSON body (a stream:
 *   its first N events), then resets the connection.
 * With `stream: true` it answers SSE, ending with a usage chunk when
 * `stream_options.include_usage` is set; otherwise JSON.
 */
import {
  Agent,
  createServer,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse
} from "node:http"
import type { AddressInfo } from "node:net"
import type * as LlmGuard from "../../src/http/LlmGuard.js"

export interface Received {
  readonly path: string
  readonly headers: IncomingMessage["headers"]
  readonly body: Record<string, unknown>
}

export interface StreamRecord {
  /** Every byte written, in order. */
  readonly sent: Array<Buffer>
  /** Whether the client (the guard) went away before the stream ended. */
  closedEarly: boolean
  finished: Promise<void>
}

export interface FakeUpstream {
  readonly url: string
  readonly received: Array<Received>
  readonly streams: Array<StreamRecord>
  /** Calls this upstream with the guarded request, as a host's forwarder would. */
  readonly forward: (request: Request) => Promise<Response>
  /** The same call on Node's `http` client, the guard's Node contract. */
  readonly nodeForward: LlmGuard.NodeForward
  readonly close: () => Promise<void>
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}")
  return isRecord(parsed) ? parsed : {}
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const usageOf = (req: IncomingMessage, completionTokens: number) => {
  const given = header(req, "x-fake-usage")
  const [prompt, completion] = given === undefined ? [] : given.split(",").map(Number)
  const promptTokens = prompt !== undefined && Number.isFinite(prompt) ? prompt : 10
  const completion_tokens =
    completion !== undefined && Number.isFinite(completion) ? completion : completionTokens
  return { prompt_tokens: promptTokens, completion_tokens, total_tokens: promptTokens + completion_tokens }
}

const chunk = (
  id: string,
  model: string,
  delta: Record<string, unknown>,
  finish: string | null,
  usage: boolean
) =>
  JSON.stringify({
    id,
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(usage ? { usage: null } : {})
  })

const handle = async (
  req: IncomingMessage,
  res: ServerResponse,
  received: Array<Received>,
  streams: Array<StreamRecord>
) => {
  const body = await readBody(req)
  received.push({ path: req.url ?? "", headers: req.headers, body })
  const model = typeof body.model === "string" ? body.model : "unknown"
  if (header(req, "x-fake-drop") !== undefined) {
    req.socket.destroy()
    return
  }
  if (header(req, "x-fake-hang") !== undefined) return
  if (header(req, "x-fake-malformed") !== undefined) {
    res.writeHead(200, { "content-type": "application/json" })
    res.end('{"id":"chatcmpl-broken","choices":[{"message":{"content":"half an ans')
    return
  }
  const resetAfter = header(req, "x-fake-reset-after")
  const cut = resetAfter === undefined ? Number.POSITIVE_INFINITY : Number(resetAfter)
  if (header(req, "x-fake-status") !== undefined) {
    res.writeHead(Number(header(req, "x-fake-status")), { "content-type": "application/json" })
    res.end(
      JSON.stringify({
        error: { message: "upstream exploded", type: "server_error", code: null, param: null }
      })
    )
    return
  }
  const chunks = Number(header(req, "x-fake-chunks") ?? "5")
  const delay = Number(header(req, "x-fake-delay-ms") ?? "0")
  const noUsage = header(req, "x-fake-no-usage") !== undefined
  const id = `chatcmpl-${received.length}`

  if (body.stream !== true) {
    const content = Array.from({ length: chunks }, (_, i) => `word${i}`).join(" ")
    const answer = JSON.stringify({
      id,
      object: req.url?.includes("embeddings") ? "list" : "chat.completion",
      model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      ...(noUsage ? {} : { usage: usageOf(req, chunks) })
    })
    if (cut < answer.length) {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(answer.length) })
      res.write(answer.slice(0, cut), () => res.destroy())
      return
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(answer)
    return
  }

  const includeUsage = !noUsage && isRecord(body.stream_options) && body.stream_options.include_usage === true
  let resolveFinished = () => {}
  const record: StreamRecord = {
    sent: [],
    closedEarly: false,
    finished: new Promise((resolve) => {
      resolveFinished = resolve
    })
  }
  streams.push(record)
  res.on("close", () => {
    if (!res.writableFinished) record.closedEarly = true
    resolveFinished()
  })
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  const write = (text: string) => {
    const bytes = Buffer.from(text, "utf8")
    record.sent.push(bytes)
    res.write(bytes)
  }
  write(`data: ${chunk(id, model, { role: "assistant", content: "" }, null, includeUsage)}\n\n`)
  for (let i = 0; i < chunks; i++) {
    if (delay > 0) await sleep(delay)
    if (res.destroyed) return
    if (i >= cut) {
      // What was written still goes out; then the connection ends mid-body.
      res.socket?.destroySoon()
      return
    }
    // Events split across writes and CRLF line ends: the guard must cope with both.
    const event = `data: ${chunk(id, model, { content: `word${i} ` }, null, includeUsage)}`
    if (i % 2 === 0) write(`${event}\n\n`)
    else {
      write(event.slice(0, 10))
      write(`${event.slice(10)}\r\n\r\n`)
    }
  }
  if (res.destroyed) return
  write(`data: ${chunk(id, model, {}, "stop", includeUsage)}\n\n`)
  if (includeUsage) {
    write(
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [], usage: usageOf(req, chunks) })}\n\n`
    )
  }
  write("data: [DONE]\n\n")
  res.end()
}

export interface StartOptions {
  /** How long `forward` waits for the whole answer before it gives up with a `TimeoutError`. */
  readonly forwardTimeoutMs?: number
}

export const start = async (options: StartOptions = {}): Promise<FakeUpstream> => {
  const received: Array<Received> = []
  const streams: Array<StreamRecord> = []
  const server: Server = createServer((req, res) => {
    handle(req, res, received, streams).catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0
  const url = `http://127.0.0.1:${port}`
  const forward = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname
    const headers = new Headers(request.headers)
    headers.set("authorization", "Bearer upstream-secret")
    return fetch(`${url}${path}`, {
      method: "POST",
      headers,
      body: await request.text(),
      signal:
        options.forwardTimeoutMs === undefined
          ? request.signal
          : AbortSignal.any([request.signal, AbortSignal.timeout(options.forwardTimeoutMs)])
    })
  }
  const agent = new Agent({ keepAlive: true })
  const nodeForward: LlmGuard.NodeForward = {
    node: (upstream) =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = { authorization: "Bearer upstream-secret" }
        for (const [name, value] of upstream.headers) headers[name] = value
        const req = httpRequest(
          `${url}${upstream.url.split("?")[0] ?? "/"}`,
          { method: upstream.method, headers, agent },
          (res) => {
            res.once("close", () => clearTimeout(timer))
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: res })
          }
        )
        // As `forward`: the whole answer must come within the timeout.
        const limit = options.forwardTimeoutMs
        const timer =
          limit === undefined
            ? undefined
            : setTimeout(() => {
                const error = new Error("the upstream took too long")
                error.name = "TimeoutError"
                req.destroy(error)
              }, limit)
        req.once("error", (error) => {
          clearTimeout(timer)
          reject(error)
        })
        upstream.onAbandoned(() => req.destroy())
        req.end(upstream.body)
      })
  }
  return {
    url,
    received,
    streams,
    forward,
    nodeForward,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
