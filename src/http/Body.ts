/**
 * Request bodies read with a size limit and parsed as JSON, failing with an
 * `InvalidRequest` (400) that says what is wrong with the body.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { InvalidRequest } from "../domain/Errors.js"

/** The default largest body accepted: 1 MiB. @since 0.1.0 */
export const DEFAULT_LIMIT = 1024 * 1024

const tooLarge = (limit: number) =>
  new InvalidRequest({ path: "", detail: `the request body must be at most ${limit} bytes` })

const unreadable = () => new InvalidRequest({ path: "", detail: "the request body could not be read" })

const notUtf8 = () => new InvalidRequest({ path: "", detail: "the request body must be UTF-8 text" })

// Stateless between calls (no `stream` option), so one decoder serves every request.
const utf8 = new TextDecoder("utf-8", { fatal: true })

type Read =
  { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: InvalidRequest }

const decode = (bytes: Uint8Array): Read => {
  try {
    return { ok: true, text: utf8.decode(bytes) }
  } catch {
    return { ok: false, error: notUtf8() }
  }
}

const collect = async (body: ReadableStream<Uint8Array>, limit: number): Promise<Read> => {
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel().catch(() => undefined)
        return { ok: false, error: tooLarge(limit) }
      }
      chunks.push(value)
    }
  } catch {
    return { ok: false, error: unreadable() }
  }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return decode(bytes)
}

/**
 * A body of declared length, read whole: the server's HTTP parser stops at the declared
 * length, and servers such as `@hono/node-server` read it without building a stream.
 */
const whole = async (request: Request, limit: number): Promise<Read> => {
  try {
    const bytes = new Uint8Array(await request.arrayBuffer())
    return bytes.byteLength > limit ? { ok: false, error: tooLarge(limit) } : decode(bytes)
  } catch {
    return { ok: false, error: unreadable() }
  }
}

/**
 * The body as text, refused past `limit` bytes: at once when `Content-Length` says so,
 * else as soon as the stream passes the limit (it is not read further).
 *
 * @example
 * const text = yield* Body.readText(request, Body.DEFAULT_LIMIT)
 * @since 0.1.0
 */
export const readText = (request: Request, limit: number): Effect.Effect<string, InvalidRequest> =>
  Effect.suspend(() => {
    const length = request.headers.get("content-length")
    const declared = length === null ? Number.NaN : Number(length)
    if (declared > limit) {
      request.body?.cancel().catch(() => undefined)
      return Effect.fail(tooLarge(limit))
    }
    // Touching `body` makes some servers' lazy requests build a stream: only when needed.
    const read = (): Promise<Read> => {
      if (Number.isSafeInteger(declared)) return whole(request, limit)
      const body = request.body
      return body === null ? Promise.resolve({ ok: true, text: "" }) : collect(body, limit)
    }
    return Effect.flatMap(Effect.promise(read), (read): Effect.Effect<string, InvalidRequest> =>
      read.ok ? Effect.succeed(read.text) : Effect.fail(read.error)
    )
  })

/**
 * Parses JSON text; malformed JSON is an `InvalidRequest` with the parser's position.
 *
 * @since 0.1.0
 */
export const parseJson = (text: string): Effect.Effect<unknown, InvalidRequest> =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) =>
      new InvalidRequest({
        path: "",
        detail:
          text.trim() === ""
            ? "the request body is empty; a JSON object is expected"
            : `the request body is not valid JSON${positionOf(error)}`
      })
  })

// The parser's message quotes the input near the error, which may hold a key; only
// the position is kept.
const positionOf = (error: unknown): string => {
  const match = error instanceof Error ? /position (\d+)/.exec(error.message) : null
  return match === null ? "" : ` (at position ${match[1]})`
}

/**
 * Reads and parses a JSON body with a size limit.
 *
 * @since 0.1.0
 */
export const readJson = (request: Request, limit: number): Effect.Effect<unknown, InvalidRequest> =>
  Effect.flatMap(readText(request, limit), parseJson)
