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
  // Lines are cut on bytes and decoded whole, so a character split across chunks
  // needs no streaming decoder, and only `data` lines are decoded at all.
  let pending: Array<Uint8Array> = []
  let pendingSize = 0
  let data: Array<string> = []
  let afterCr = false
  let broken = false

  const dispatch = () => {
    if (data.length > 0) onData(data.length === 1 ? (data[0] ?? "") : data.join("\n"))
    data = []
  }

  const line = (bytes: Uint8Array, start: number, end: number) => {
    if (start === end) return dispatch()
    // Only `data` or `data:...`; comments (a leading colon) and other fields are skipped.
    if (
      end - start < 4 ||
      bytes[start] !== D ||
      bytes[start + 1] !== A ||
      bytes[start + 2] !== T ||
      bytes[start + 3] !== A
    )
      return
    if (end - start === 4) return void data.push("")
    if (bytes[start + 4] !== COLON) return
    const from = bytes[start + 5] === SPACE && start + 5 < end ? start + 6 : start + 5
    data.push(utf8.decode(bytes.subarray(from, end)))
  }

  /** The line that ends at `end` of `chunk`, with what earlier chunks held of it. */
  const lineEndingIn = (chunk: Uint8Array, start: number, end: number) => {
    if (pendingSize === 0) return line(chunk, start, end)
    const whole = new Uint8Array(pendingSize + end - start)
    let offset = 0
    for (const part of pending) {
      whole.set(part, offset)
      offset += part.byteLength
    }
    whole.set(chunk.subarray(start, end), offset)
    pending = []
    pendingSize = 0
    line(whole, 0, whole.byteLength)
  }

  return {
    push: (chunk) => {
      if (broken) return
      let start = 0
      // A `\r` that ended the last chunk and a `\n` that starts this one are one line end.
      if (afterCr && chunk[0] === LF) start = 1
      afterCr = false
      for (let i = start; i < chunk.length; i++) {
        const c = chunk[i]
        if (c !== LF && c !== CR) continue
        lineEndingIn(chunk, start, i)
        if (c === CR) {
          if (i + 1 === chunk.length) afterCr = true
          else if (chunk[i + 1] === LF) i++
        }
        start = i + 1
      }
      if (start === chunk.length) return
      pending.push(chunk.slice(start))
      pendingSize += chunk.length - start
      if (pendingSize > MAX_LINE) {
        broken = true
        pending = []
        pendingSize = 0
        data = []
      }
    },
    end: () => {
      if (broken) return
      if (pendingSize > 0) lineEndingIn(new Uint8Array(0), 0, 0)
      dispatch()
    }
  }
}

// Stateless between calls (no `stream` option): every line is decoded whole.
const utf8 = new TextDecoder()
const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32
const D = 100
const A = 97
const T = 116
