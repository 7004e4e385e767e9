/**
 * An incremental parser of Server-Sent Events, fed the bytes of a stream as they pass.
 * It only reads: the bytes themselves go on unchanged.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export interface SseParser {
  /** Feeds the next bytes; complete events are handed to `onData` at once. */
  readonly push: (chunk: Uint8Array) => void
  /** The stream ended: a last event without its blank line is still dispatched. */
  readonly end: () => void
}

/** A line longer than this stops the parsing (the bytes still pass): 4 MiB. @since 0.1.0 */
export const MAX_LINE = 4 * 1024 * 1024

/**
 * A parser calling `onData` with the `data` of each event (its `data:` lines joined
 * by `\n`), following the WHATWG event-stream rules for line ends (`\r\n`, `\n`, `\r`),
 * comments and the optional space after the colon.
 *
 * @example
 * const parser = Sse.make((data) => console.log(data))
 * parser.push(new TextEncoder().encode("data: {\"a\":1}\n\n")) // logs {"a":1}
 * @since 0.1.0
 */
export const make = (onData: (data: string) => void): SseParser => {
  const decoder = new TextDecoder()
  let buffer = ""
  let data: Array<string> = []
  let broken = false

  const dispatch = () => {
    if (data.length > 0) onData(data.join("\n"))
    data = []
  }

  const line = (text: string) => {
    if (text === "") return dispatch()
    if (text.startsWith(":")) return
    const colon = text.indexOf(":")
    const field = colon === -1 ? text : text.slice(0, colon)
    if (field !== "data") return
    let value = colon === -1 ? "" : text.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    data.push(value)
  }

  const drain = (final: boolean) => {
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i)
      if (c !== 10 && c !== 13) continue
      // A `\r` at the very end may be the first half of `\r\n`: wait for more.
      if (c === 13 && i === buffer.length - 1 && !final) break
      line(buffer.slice(start, i))
      if (c === 13 && buffer.charCodeAt(i + 1) === 10) i++
      start = i + 1
    }
    buffer = buffer.slice(start)
    if (buffer.length > MAX_LINE) {
      broken = true
      buffer = ""
      data = []
    }
  }

  return {
    push: (chunk) => {
      if (broken) return
      buffer += decoder.decode(chunk, { stream: true })
      drain(false)
    },
    end: () => {
      if (broken) return
      buffer += decoder.decode()
      drain(true)
      if (buffer !== "") line(buffer)
      buffer = ""
      dispatch()
    }
  }
}
