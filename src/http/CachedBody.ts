/**
 * The body of a response that `@hono/node-server` still holds as it was given.
 *
 * That server replaces the global `Response` with a light one: a body given as a
 * string or bytes is kept as it is, with the status and headers, in a cache the server
 * writes from directly. Every other use (`arrayBuffer()`, `body`, `statusText`) first
 * builds the runtime's own `Response` and, on Node 20, a web stream with it (see
 * `UpstreamRequest` for what one costs). The guard only needs the bytes, so it reads
 * them from that cache when it is there, and through the `Response` API otherwise.
 *
 * The cache is an own property of the response, keyed by a symbol described `cache`,
 * holding `[status, body, headers]`. Anything of another shape is left alone.
 *
 * @since 0.1.0
 */

const encoder = new TextEncoder()

/**
 * The bytes of a response whose body is held unread in `@hono/node-server`'s cache,
 * else undefined.
 *
 * @example
 * const bytes = CachedBody.bytesOf(response) ?? new Uint8Array(await response.arrayBuffer())
 * @since 0.1.0
 */
export const bytesOf = (response: Response): Uint8Array<ArrayBuffer> | undefined => {
  for (const symbol of Object.getOwnPropertySymbols(response)) {
    if (symbol.description !== "cache") continue
    const cache: unknown = Reflect.get(response, symbol)
    if (!Array.isArray(cache) || cache.length !== 3 || cache[0] !== response.status) return undefined
    const body: unknown = cache[1]
    if (typeof body === "string") return encoder.encode(body)
    // A copy: the bytes a handler gave stay its own.
    if (body instanceof Uint8Array) return new Uint8Array(body)
    return undefined
  }
  return undefined
}
