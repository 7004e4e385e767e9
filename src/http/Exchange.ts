/**
 * The guard's view of one HTTP exchange, whatever the server: what it reads of the
 * caller's request ({@link Inbound}) and what it answers ({@link Reply}). A web
 * `Request`/`Response` and Node's `req`/`res` both map onto it, so a Node server is
 * served without building web objects around every request.
 *
 * @since 0.1.0
 */
import type { Readable } from "node:stream"
import type { Effect } from "effect"
import type { InvalidRequest } from "../domain/Errors.js"
import * as Body from "./Body.js"
import { UpstreamRequest } from "./UpstreamRequest.js"

/** A header as a name and a value. @since 0.1.0 */
export type Header = readonly [string, string]

/**
 * Response headers as Node's `http` client gives them (`res.headers`): lower-case
 * names, a list for a header sent more than once.
 *
 * @since 0.1.0
 */
export type NodeHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/** How a passed-through stream ended. @since 0.1.0 */
export type Outcome = "complete" | "cancelled" | "failed"

/**
 * A Node byte stream passed through to the client as it comes: every chunk is shown to
 * `observe` as it is written, and `finish` is called once, when the stream ends, breaks,
 * or the client goes away. It is read only as fast as the client takes it.
 *
 * @example
 * const body = new Exchange.NodeBody(upstreamResponse, (chunk) => parser.push(chunk), async () => {})
 * @since 0.1.0
 */
export class NodeBody {
  private finished = false

  constructor(
    readonly source: Readable,
    readonly observe: (chunk: Uint8Array) => void,
    readonly finish: (outcome: Outcome) => Promise<void>
  ) {}

  /** Calls `finish` with the first outcome only. */
  end(outcome: Outcome): Promise<void> {
    if (this.finished) return Promise.resolve()
    this.finished = true
    return this.finish(outcome)
  }

  /** The stream as a web stream, for a server that writes web bodies. */
  toWeb(): ReadableStream<Uint8Array> {
    const source = this.source
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          source.on("data", (chunk: Buffer) => {
            this.observe(chunk)
            controller.enqueue(chunk)
            if ((controller.desiredSize ?? 0) <= 0) source.pause()
          })
          source.once("end", () => {
            void this.end("complete")
            controller.close()
          })
          // Node's client emits a broken body's error only to listeners; the close says it.
          source.on("error", () => undefined)
          source.once("close", () => {
            if (this.finished) return
            void this.end("failed")
            controller.error(new Error("the upstream closed the connection mid-response"))
          })
          source.pause()
        },
        pull: () => {
          source.resume()
        },
        cancel: () => {
          source.destroy()
          return this.end("cancelled")
        }
      },
      { highWaterMark: 1 }
    )
  }
}

/**
 * What the guard reads of the caller's request.
 *
 * @since 0.1.0
 */
export interface Inbound {
  /** The `Authorization` header, if any. */
  readonly authorization: string | null
  /** The body as UTF-8 text, refused past `limit` bytes. */
  readonly text: (limit: number) => Effect.Effect<string, InvalidRequest>
  /** The request for the upstream: the caller's, with `body`, without the caller's key. */
  readonly upstream: (body: string) => Request
  /** The same request as its parts, for a forwarder on Node's `http` client. */
  readonly nodeUpstream: (body: string) => NodeUpstream
}

/**
 * The guarded request as a Node `http` client sends it: no web objects.
 *
 * @since 0.1.0
 */
export interface NodeUpstream {
  readonly method: string
  /** The caller's path and query. */
  readonly url: string
  /** The caller's headers without its key and connection headers, with a JSON content type. */
  readonly headers: ReadonlyArray<Header>
  /** The body to send (a streamed request also asks for its usage). */
  readonly body: string
  /** Registers `cancel` to run if the caller goes away before its answer is finished. */
  readonly onAbandoned: (cancel: () => void) => void
}

/**
 * The upstream's answer as a Node `http` client receives it (`http.IncomingMessage`
 * fits): status, headers, and the body as a byte stream.
 *
 * @since 0.1.0
 */
export interface NodeAnswer {
  readonly status: number
  readonly statusText?: string
  readonly headers: NodeHeaders
  readonly body: Readable
}

// Hop-by-hop headers, and those that described the upstream's bytes on the wire: a
// `fetch` response body is already decoded, and its length is the runtime's to set.
const UPSTREAM_ONLY: ReadonlyArray<string> = [
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-encoding"
]

// What only concerned the caller's connection to this server, and the caller's key.
const CLIENT_ONLY: ReadonlyArray<string> = [
  "authorization",
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "expect",
  "content-type"
]

/**
 * An answer as its parts: the upstream's headers without those that described its
 * wire form, with `extraHeaders` replacing any of the same name. A body of bytes is
 * written in one piece with its length; a stream as it comes.
 *
 * @example
 * const reply = new Exchange.Reply(200, "", upstream.headers, [["x-budget-remaining-usd", "4.5"]], bytes)
 * const response = Exchange.toResponse(reply)
 * @since 0.1.0
 */
export class Reply {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly upstreamHeaders: Headers | NodeHeaders,
    readonly extraHeaders: ReadonlyArray<Header>,
    readonly body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | NodeBody | null
  ) {}

  /** The headers as a web `Headers`: a copy of a `Headers` is far cheaper than one built from pairs. */
  headers(): Headers {
    const upstream = this.upstreamHeaders
    if (!(upstream instanceof Headers)) {
      const headers = new Headers()
      this.forEachHeader((name, value) => headers.append(name, value))
      return headers
    }
    const headers = new Headers(upstream)
    for (const name of UPSTREAM_ONLY) headers.delete(name)
    for (const [name, value] of this.extraHeaders) headers.set(name, value)
    return headers
  }

  /** Visits every header (`set-cookie` once per cookie), for a server that writes them itself. */
  forEachHeader(visit: (name: string, value: string) => void): void {
    const extra = this.extraHeaders
    const kept = (name: string) =>
      !UPSTREAM_ONLY.includes(name) && !extra.some(([replaced]) => replaced === name)
    const upstream = this.upstreamHeaders
    if (upstream instanceof Headers) {
      upstream.forEach((value, name) => {
        if (kept(name)) visit(name, value)
      })
    } else {
      for (const name in upstream) {
        const value = upstream[name]
        if (value === undefined || !kept(name)) continue
        if (typeof value === "string") visit(name, value)
        else for (const each of value) visit(name, each)
      }
    }
    for (const [name, value] of extra) visit(name, value)
  }
}

/**
 * The caller's headers as the upstream gets them, from a server's raw header list:
 * without the caller's key and the connection's own headers, with a JSON content type.
 *
 * @example
 * const headers = Exchange.upstreamHeaders(req.rawHeaders)
 * @since 0.1.0
 */
export const upstreamHeaders = (raw: ReadonlyArray<string>): Array<[string, string]> => {
  const pairs: Array<[string, string]> = [["content-type", "application/json"]]
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]?.toLowerCase()
    const value = raw[i + 1]
    if (name === undefined || value === undefined || name.startsWith(":") || CLIENT_ONLY.includes(name))
      continue
    pairs.push([name, value])
  }
  return pairs
}

// Pairs, not a `Headers` with names deleted: the request copies them once, and a
// server's own lazy headers are read once.
const requestHeaders = (source: Headers): Array<[string, string]> => {
  const pairs: Array<[string, string]> = [["content-type", "application/json"]]
  source.forEach((value, name) => {
    if (!CLIENT_ONLY.includes(name)) pairs.push([name, value])
  })
  return pairs
}

/**
 * The guard's view of a web `Request`.
 *
 * @example
 * const inbound = Exchange.fromRequest(request)
 * @since 0.1.0
 */
export const fromRequest = (request: Request): Inbound => ({
  authorization: request.headers.get("authorization"),
  text: (limit) => Body.readText(request, limit),
  upstream: (body) =>
    new UpstreamRequest(
      request.url,
      {
        method: request.method,
        headers: () => requestHeaders(request.headers),
        signal: () => request.signal
      },
      body
    ),
  nodeUpstream: (body) => {
    const url = new URL(request.url)
    return {
      method: request.method,
      url: `${url.pathname}${url.search}`,
      headers: requestHeaders(request.headers),
      body,
      onAbandoned: (cancel) => request.signal.addEventListener("abort", cancel, { once: true })
    }
  }
})

/**
 * The headers of a reply to a web `Response`: a plain record, which servers such as
 * `@hono/node-server` write as it is (a `Headers` they would copy and sort again), or
 * {@link Reply.headers} when a name comes twice (`set-cookie`, or an extra header
 * replacing one), whose rules then decide.
 */
const responseHeaders = (reply: Reply): HeadersInit => {
  const pairs: Array<[string, string]> = []
  const seen = new Set<string>()
  let repeated = false
  reply.forEachHeader((name, value) => {
    const lower = name.toLowerCase()
    if (seen.has(lower)) repeated = true
    seen.add(lower)
    pairs.push([lower, value])
  })
  // `fromEntries` makes every name an own property, `__proto__` included.
  return repeated ? reply.headers() : Object.fromEntries(pairs)
}

/**
 * A reply as a web `Response`.
 *
 * @example
 * const response = Exchange.toResponse(reply)
 * @since 0.1.0
 */
export const toResponse = (reply: Reply | Response): Response =>
  reply instanceof Reply
    ? new Response(reply.body instanceof NodeBody ? reply.body.toWeb() : reply.body, {
        status: reply.status,
        statusText: reply.statusText,
        headers: responseHeaders(reply)
      })
    : reply
