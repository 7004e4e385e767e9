import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Sse from "../../src/http/Sse.js"

const parseAll = (chunks: ReadonlyArray<Uint8Array>): Array<string> => {
  const events: Array<string> = []
  const parser = Sse.make((data) => events.push(data))
  for (const chunk of chunks) parser.push(chunk)
  parser.end()
  return events
}

/** Cuts bytes at the given offsets. */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points) {
    chunks.push(bytes.slice(start, point))
    start = point
  }
  chunks.push(bytes.slice(start))
  return chunks
}

const encode = (text: string) => new TextEncoder().encode(text)

describe("Sse", () => {
  it("reads data lines, joins multi-line data, skips comments and other fields", () => {
    const stream =
      ': keep-alive\n\nevent: message\nid: 1\ndata: {"a":1}\n\ndata:first\ndata: second\n\ndata\n\nretry: 5\n\n'
    expect(parseAll([encode(stream)])).toEqual(['{"a":1}', "first\nsecond", ""])
  })

  it("accepts CRLF, CR and LF line ends, and a last event without its blank line", () => {
    expect(parseAll([encode("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d")])).toEqual(["a", "b", "c", "d"])
  })

  it("finds the same events however the bytes are cut, multi-byte characters included", () => {
    const events = fc.array(
      fc.oneof(fc.string(), fc.constantFrom("żółw 🐢", '{"choices":[{"delta":{"content":"é"}}]}', "[DONE]")),
      { minLength: 1, maxLength: 8 }
    )
    const lineEnd = fc.constantFrom("\n", "\r\n", "\r")
    fc.assert(
      fc.property(
        events.map((list) => list.map((event) => event.replace(/[\r\n]/g, " "))),
        lineEnd,
        fc.array(fc.nat(), { maxLength: 20 }),
        (list, eol, cuts) => {
          const bytes = encode(list.map((event) => `data: ${event}${eol}${eol}`).join(""))
          expect(parseAll(split(bytes, cuts))).toEqual(list)
        }
      )
    )
  })

  it("gives up on a line past the limit without throwing", () => {
    const events: Array<string> = []
    const parser = Sse.make((data) => events.push(data))
    parser.push(encode(`data: ${"x".repeat(Sse.MAX_LINE + 10)}`))
    parser.push(encode("\n\ndata: later\n\n"))
    parser.end()
    expect(events).toEqual([])
  })
})
