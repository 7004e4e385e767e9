/**
 * Node's `http` request and response to and from web `Request` and `Response`, for
 * frameworks built on Node's server (Express, Fastify). Bodies stream both ways with
 * back-pressure; a client that goes away cancels the response body, which is how the
 * guard learns of an abort.
 *
 * @since 0.1.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import * as Body from "./Body.js"
import { type Inbound, NodeBody, type Outcome, Reply, upstreamHeaders } from "./Exchange.js"
import { UpstreamRequest } from "./UpstreamRequest.js"

/** @since 0.1.0 */
export interface ToRequestOptions {
  /** The path and query to use instead of `req.url` (e.g. without a mount prefix). */
  readonly url?: string
  /**
   * A body a body parser has already read (`req.body`): sent as it is when it is a
   * string or bytes, as JSON otherwise. Without it, the request stream is read.
   */
  readonly parsedBody?: unknown
}

const hasBody = (method: string): boolean => method !== "GET" && method !== "HEAD"

const origin = (req: IncomingMessage): string => {
  const host = req.headers.host
  const scheme = "encrypted" in req.socket && req.socket.encrypted === true ? "https" : "http"
  return host !== undefined && /^[A-Za-z0-9.:[\]-]+$/.test(host)
    ? `${scheme}://${host}`
    : `${scheme}://localhost`
}

const headersOf = (req: IncomingMessage): Headers => {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    if (name === undefined || value === undefined || name.startsWith(":")) continue
    headers.append(name, value)
  }
  return headers
}

/** The request stream as a web stream that reads only as fast as it is consumed. */
const streamOf = (req: IncomingMessage): ReadableStream<Uint8Array> => {
  let done = false
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.on("data", (chunk: Buffer) => {
          if (done) return
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) req.pause()
        })
        req.on("end", () => {
          if (done) return
          done = true
          controller.close()
        })
        req.on("error", (error) => {
          if (done) return
          done = true
          controller.error(error)
        })
        req.pause()
      },
      pull() {
        req.resume()
      },
      cancel() {
        // Drain what is left so the response can still be written on this connection.
        done = true
        req.resume()
      }
    },
    { highWaterMark: 1 }
  )
}

const parsedBodyOf = (body: unknown): string | Uint8Array<ArrayBuffer> =>
  typeof body === "string" ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body)

/** An `AbortSignal` that aborts when the client goes away before the response is finished. */
const abandoned = (res: ServerResponse): AbortSignal => {
  const controller = new AbortController()
  const abort = () => {
    if (!res.writableFinished) controller.abort()
  }
  // Asked for late, the client may have gone already.
  if (res.closed) abort()
  else res.on("close", abort)
  return controller.signal
}

/**
 * A web `Request` for a Node request. Its `signal` aborts when the client goes away
 * before the response is finished.
 *
 * @since 0.1.0
 */
export const toRequest = (
  req: IncomingMessage,
  res: ServerResponse,
  options: ToRequestOptions = {}
): Request => {
  const method = (req.method ?? "GET").toUpperCase()
  const body = !hasBody(method)
    ? null
    : options.parsedBody !== undefined
      ? parsedBodyOf(options.parsedBody)
      : streamOf(req)
  const headers = headersOf(req)
  if (options.parsedBody !== undefined) headers.delete("content-length")
  const init: RequestInit & { duplex: "half" } = {
    method,
    headers,
    body,
    signal: abandoned(res),
    duplex: "half"
  }
  return new Request(`${origin(req)}${options.url ?? req.url ?? "/"}`, init)
}

/**
 * The guard's view of a Node request: its body read straight from the socket (or
 * taken from `options.parsedBody`), a web `Request` built only for the upstream.
 *
 * @example
 * const reply = yield* LlmGuard.serve(NodeBridge.inbound(req, res), forward)
 * @since 0.1.0
 */
export const inbound = (
  req: IncomingMessage,
  res: ServerResponse,
  options: ToRequestOptions = {}
): Inbound => {
  const header = req.headers.authorization
  return {
    authorization: header ?? null,
    text: (limit) =>
      options.parsedBody === undefined
        ? Body.readNode(req, limit)
        : Body.fromParsed(parsedBodyOf(options.parsedBody), limit),
    upstream: (body) =>
      new UpstreamRequest(
        `${origin(req)}${options.url ?? req.url ?? "/"}`,
        {
          method: (req.method ?? "POST").toUpperCase(),
          headers: () => upstreamHeaders(req.rawHeaders),
          signal: () => abandoned(res)
        },
        body
      ),
    nodeUpstream: (body) => ({
      method: (req.method ?? "POST").toUpperCase(),
      url: options.url ?? req.url ?? "/",
      headers: upstreamHeaders(req.rawHeaders),
      body,
      onAbandoned: (cancel) => {
        res.once("close", () => {
          if (!res.writableFinished) cancel()
        })
      }
    })
  }
}

const waitForDrain = (res: ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      res.off("drain", done)
      res.off("close", done)
      resolve()
    }
    res.on("drain", done)
    res.on("close", done)
  })

/** Streams a body to a Node response; when the client goes away first, the body is cancelled. */
const pipe = async (body: ReadableStream<Uint8Array>, res: ServerResponse, eventStream: boolean) => {
  const reader = body.getReader()
  const onClose = () => {
    if (!res.writableFinished) reader.cancel().catch(() => undefined)
  }
  res.on("close", onClose)
  // Streams start at once so the client sees the headers before the first event.
  if (eventStream) res.flushHeaders()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (res.destroyed) {
        // The client left between two chunks: tell the body, whose owner may settle on it.
        await reader.cancel().catch(() => undefined)
        return
      }
      if (!res.write(value)) await waitForDrain(res)
    }
    res.end()
  } catch {
    // The body failed half-way: the only honest signal left is a broken connection.
    res.destroy()
  } finally {
    res.off("close", onClose)
  }
}

/**
 * Pipes a Node body to the response with back-pressure, each chunk shown to the body's
 * observer as it is written; resolves once the body has finished one way or another.
 * A complete body ends the response first and is charged right after, so the client
 * never waits on the store: a reader on another connection may see that charge a
 * moment after the last byte arrived.
 */
const pipeNode = (body: NodeBody, res: ServerResponse, eventStream: boolean): Promise<void> =>
  new Promise((resolve) => {
    const source = body.source
    let finished = false
    const done = (outcome: Outcome) => {
      if (finished) return
      finished = true
      source.off("data", onData)
      res.off("drain", onDrain)
      res.off("close", onClientGone)
      if (outcome === "complete") res.end()
      else if (outcome === "failed") res.destroy()
      else source.destroy()
      void body.end(outcome).then(resolve, resolve)
    }
    // Chunks that arrive together, and the end right after them, leave in one write.
    let corked = false
    const uncork = () => {
      corked = false
      res.uncork()
    }
    const onData = (chunk: Buffer) => {
      try {
        body.observe(chunk)
      } catch {
        // Metering never breaks the client's stream.
      }
      if (!corked) {
        corked = true
        res.cork()
        process.nextTick(uncork)
      }
      if (!res.write(chunk)) source.pause()
    }
    const onDrain = () => source.resume()
    const onClientGone = () => {
      if (!res.writableFinished) done("cancelled")
    }
    source.on("data", onData)
    source.on("error", () => undefined)
    source.once("end", () => done("complete"))
    source.once("close", () => {
      if (!source.readableEnded) done("failed")
    })
    res.on("drain", onDrain)
    res.on("close", onClientGone)
    // A stream shows its headers at once, unless its first bytes are already here to go with them.
    if (eventStream && source.readableLength === 0) res.flushHeaders()
  })

const isEventStream = (contentType: string | null | undefined): boolean =>
  (contentType ?? "").includes("text/event-stream")

/**
 * Writes a web `Response` to a Node response, streaming its body. When the client goes
 * away first, the body is cancelled.
 *
 * @since 0.1.0
 */
export const writeResponse = async (response: Response, res: ServerResponse): Promise<void> => {
  res.statusCode = response.status
  if (response.statusText !== "") res.statusMessage = response.statusText
  const cookies = response.headers.getSetCookie()
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value)
  })
  if (cookies.length > 0) res.setHeader("set-cookie", cookies)
  if (response.body === null) {
    res.end()
    return
  }
  await pipe(response.body, res, isEventStream(response.headers.get("content-type")))
}

/**
 * Writes a reply (or a web `Response`) to a Node response: a body of bytes in one
 * write with its length, a stream as it comes.
 *
 * @example
 * await NodeBridge.writeReply(reply, res)
 * @since 0.1.0
 */
export const writeReply = async (reply: Reply | Response, res: ServerResponse): Promise<void> => {
  if (res.headersSent || res.destroyed) {
    if (reply.body instanceof ReadableStream) await reply.body.cancel().catch(() => undefined)
    if (reply.body instanceof NodeBody) {
      reply.body.source.destroy()
      await reply.body.end("cancelled")
    }
    return
  }
  if (!(reply instanceof Reply)) return writeResponse(reply, res)
  res.statusCode = reply.status
  if (reply.statusText !== "") res.statusMessage = reply.statusText
  let contentType: string | undefined
  reply.forEachHeader((name, value) => {
    if (name === "content-type") contentType = value
    res.appendHeader(name, value)
  })
  const body = reply.body
  if (body === null) {
    res.end()
  } else if (body instanceof Uint8Array) {
    res.setHeader("content-length", body.byteLength)
    res.end(body)
  } else if (body instanceof NodeBody) {
    await pipeNode(body, res, isEventStream(contentType))
  } else {
    await pipe(body, res, isEventStream(contentType))
  }
}

/**
 * Serves one Node request with a web handler. Never rejects: a handler that throws
 * answers 500.
 *
 * @example
 * const server = http.createServer((req, res) => void NodeBridge.serve(req, res, api))
 * @since 0.1.0
 */
export const serve = async (
  req: IncomingMessage,
  res: ServerResponse,
  handler: (request: Request) => Promise<Response>,
  options: ToRequestOptions = {}
): Promise<void> => {
  let response: Response
  const request = toRequest(req, res, options)
  try {
    response = await handler(request)
  } catch {
    response = new Response(
      JSON.stringify({
        error: {
          message: "The request failed unexpectedly.",
          type: "internal_error",
          code: "internal_error",
          param: null
        }
      }),
      { status: 500, headers: { "content-type": "application/json; charset=utf-8" } }
    )
  }
  if (res.headersSent || res.destroyed) {
    await response.body?.cancel().catch(() => undefined)
  } else {
    await writeResponse(response, res)
  }
  // A body left unread (a refusal answered before it was read) is drained, so the
  // connection can carry the client's next request.
  if (!req.complete) await request.body?.cancel().catch(() => req.resume())
}
