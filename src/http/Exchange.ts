/**
 * The guard's view of one HTTP exchange, whatever the server: what it reads of the
 * caller's request ({@link Inbound}) and what it answers ({@link Reply}). A web
 * `Request`/`Response` and Node's `req`/`res` both map onto it, so a Node server is
 * served without building web objects around every request.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { InvalidRequest } from "../domain/Errors.js"
import * as Body from "./Body.js"

/** A header as a name and a value. @since 0.1.0 */
export type Header = readonly [string, string]

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
    readonly upstreamHeaders: Headers,
    readonly extraHeaders: ReadonlyArray<Header>,
    readonly body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null
  ) {}

  /** The headers as a web `Headers`: a copy of a `Headers` is far cheaper than one built from pairs. */
  headers(): Headers {
    const headers = new Headers(this.upstreamHeaders)
    for (const name of UPSTREAM_ONLY) headers.delete(name)
    for (const [name, value] of this.extraHeaders) headers.set(name, value)
    return headers
  }

  /** Visits every header (`set-cookie` once per cookie), for a server that writes them itself. */
  forEachHeader(visit: (name: string, value: string) => void): void {
    const extra = this.extraHeaders
    this.upstreamHeaders.forEach((value, name) => {
      if (!UPSTREAM_ONLY.includes(name) && !extra.some(([replaced]) => replaced === name)) visit(name, value)
    })
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

const requestHeaders = (source: Headers): Headers => {
  const headers = new Headers(source)
  for (const name of CLIENT_ONLY) headers.delete(name)
  headers.set("content-type", "application/json")
  return headers
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
    new Request(request.url, {
      method: request.method,
      headers: requestHeaders(request.headers),
      body,
      signal: request.signal
    })
})

/**
 * A reply as a web `Response`.
 *
 * @example
 * const response = Exchange.toResponse(reply)
 * @since 0.1.0
 */
export const toResponse = (reply: Reply | Response): Response =>
  reply instanceof Reply
    ? new Response(reply.body, {
        status: reply.status,
        statusText: reply.statusText,
        headers: reply.headers()
      })
    : reply
