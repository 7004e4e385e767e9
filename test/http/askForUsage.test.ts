/**
 * A streamed request asks for its usage chunk with the client's own bytes: the key is
 * written into the text, nothing else changes; options already there are kept.
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { askForUsage } from "../../src/http/AskForUsage.js"

const asked = (text: string): string => {
  const body: unknown = JSON.parse(text)
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new Error("an object is expected")
  return askForUsage(text, Object.fromEntries(Object.entries(body)))
}

describe("askForUsage", () => {
  it("writes the option into the client's text, every other byte as it came", () => {
    const text =
      '{ "model": "gpt-4o",\n  "temperature": 1.0, "messages": [{"role": "user", "content": "caf\\u00e9"}],\n  "stream": true }\n'
    const result = asked(text)
    expect(result).toBe(
      '{ "model": "gpt-4o",\n  "temperature": 1.0, "messages": [{"role": "user", "content": "caf\\u00e9"}],\n  "stream": true ,"stream_options":{"include_usage":true}}\n'
    )
    expect(JSON.parse(result)).toEqual({ ...JSON.parse(text), stream_options: { include_usage: true } })
  })

  it("keeps the options a request already gives, and a request that already asks is sent as it is", () => {
    const withOptions = '{"model":"m","stream":true,"stream_options":{"chunk":1}}'
    expect(JSON.parse(asked(withOptions))).toEqual({
      model: "m",
      stream: true,
      stream_options: { chunk: 1, include_usage: true }
    })
    const refused = '{"model":"m","stream":true,"stream_options":{"include_usage":false}}'
    expect(JSON.parse(asked(refused))).toMatchObject({ stream_options: { include_usage: true } })
    const unset = '{"model":"m","stream":true,"stream_options":null}'
    expect(JSON.parse(asked(unset))).toMatchObject({ stream_options: { include_usage: true } })
    const already = '{"model":"m", "stream":true, "stream_options":{"include_usage":true}}'
    expect(asked(already)).toBe(already)
  })

  it("gives any object, however it is written, the same fields plus the option", () => {
    const key = fc.string({ maxLength: 12 }).filter((name) => name !== "__proto__")
    const body = fc.dictionary(
      fc.oneof(key, fc.constant("stream_options")),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.dictionary(key, fc.jsonValue({ maxDepth: 1 }))),
      { maxKeys: 6 }
    )
    fc.assert(
      fc.property(body, fc.constantFrom(undefined, 0, 2, "\t"), (value, space) => {
        const text = JSON.stringify(value, null, space)
        const parsed: Record<string, unknown> = JSON.parse(text)
        const options = parsed["stream_options"]
        const kept = typeof options === "object" && options !== null && !Array.isArray(options) ? options : {}
        expect(JSON.parse(asked(text))).toEqual({
          ...parsed,
          stream_options: { ...kept, include_usage: true }
        })
      }),
      { numRuns: 300 }
    )
  })
})
