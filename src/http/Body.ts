/**
 * Request bodies read with a size limit and parsed as JSON, failing with an
 * `InvalidRequest` (400) that says what is wrong with the body.
 *
 * @since 0.1.0
 */
import type { IncomingMessage } from "node:http"
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

const concat = (chunks: ReadonlyArray<Buffer>, size: number): Uint8Array =>
  chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size)

/** A Node request body, read whole unless it passes `limit`; what is left is drained. */
const collectNode = (req: IncomingMessage, limit: number): Promise<Read> =>
  new Promise((resolve) => {
    // A body parser that ran before left nothing to read.
    if (req.readableEnded) return resolve({ ok: true, text: "" })
    const chunks: Array<Buffer> = []
    let size = 0
    const settle = (read: Read) => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onBroken)
      req.off("close", onBroken)
      resolve(read)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limit) {
        settle({ ok: false, error: tooLarge(limit) })
        // Drained, so the refusal can still be written on this connection.
        req.resume()
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => settle(decode(concat(chunks, size)))
    const onBroken = () => settle({ ok: false, error: unreadable() })
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onBroken)
    req.on("close", onBroken)
  })

/**
 * A Node request's body as text, with the limits of {@link readText}, read straight
 * from the socket's buffers.
 *
 * @example
 * const text = yield* Body.readNode(req, Body.DEFAULT_LIMIT)
 * @since 0.1.0
 */
export const readNode = (req: IncomingMessage, limit: number): Effect.Effect<string, InvalidRequest> =>
  Effect.suspend(() => {
    const length = req.headers["content-length"]
    if (length !== undefined && Number(length) > limit) {
      req.resume()
      return Effect.fail(tooLarge(limit))
    }
    return Effect.flatMap(
      Effect.promise(() => collectNode(req, limit)),
      (read): Effect.Effect<string, InvalidRequest> =>
        read.ok ? Effect.succeed(read.text) : Effect.fail(read.error)
    )
  })

/**
 * A body a body parser already read, as text, with the limit of {@link readText}.
 *
 * @example
 * const text = yield* Body.fromParsed(new TextEncoder().encode("{}"), Body.DEFAULT_LIMIT)
 * @since 0.1.0
 */
export const fromParsed = (body: string | Uint8Array, limit: number): Effect.Effect<string, InvalidRequest> =>
  Effect.suspend(() => {
    const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength
    if (size > limit) return Effect.fail(tooLarge(limit))
    if (typeof body === "string") return Effect.succeed(body)
    const read = decode(body)
    return read.ok ? Effect.succeed(read.text) : Effect.fail(read.error)
  })

/**
 * Parses JSON text; malformed JSON is an `InvalidRequest` with the parser's position.
 *
 * @since 0.1.0
 */
export const parseJson = (text: string): Effect.Effect<unknown, InvalidRequest> =>
  nestsDeeperThan(text, MAX_NESTING)
    ? Effect.fail(
        new InvalidRequest({ path: "", detail: `the request body nests deeper than ${MAX_NESTING} levels` })
      )
    : Effect.try({
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

/**
 * How deep a request body may nest. Decoding, validating and describing a value
 * recurse once per level, so a body nested thousands deep would overflow the stack
 * instead of being refused.
 *
 * @since 0.1.0
 */
export const MAX_NESTING = 100

const OPEN_BRACE = 123
const OPEN_BRACKET = 91
const CLOSE_BRACE = 125
const CLOSE_BRACKET = 93
const QUOTE = 34
const BACKSLASH = 92

/** Whether JSON text opens more than `limit` objects or arrays inside each other (strings skipped). */
const nestsDeeperThan = (text: string, limit: number): boolean => {
  // Each level takes at least two characters.
  if (text.length <= 2 * limit) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--
  }
  return false
}

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
