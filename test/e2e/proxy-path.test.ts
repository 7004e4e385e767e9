/**
 * The proxy's request path (routing and the log line): a request target's path as
 * `URL` resolves it, taken as is when there is nothing to resolve.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { pathOf } from "../../examples/proxy/server.js"

const byUrl = (target: string): string => {
  try {
    return new URL(target, "http://localhost").pathname
  } catch {
    return "/"
  }
}

/** Targets made of the characters that change how a path resolves, and plain ones. */
const target = fc
  .array(
    fc.constantFrom(
      "/",
      "//",
      ".",
      "..",
      "%2e",
      "%2F",
      "\\",
      "?",
      "#",
      "a",
      "v1",
      "chat",
      "-",
      "_",
      "key=sk"
    ),
    {
      maxLength: 12
    }
  )
  .map((parts) => parts.join(""))

describe("the proxy's request path", () => {
  it("is what URL resolves, query and fragment left out", () => {
    fc.assert(
      fc.property(target, (t) => pathOf(t) === byUrl(t)),
      { numRuns: 2000 }
    )
    fc.assert(
      fc.property(target, (t) => pathOf(`/${t}`) === byUrl(`/${t}`)),
      { numRuns: 2000 }
    )
  })

  it("names a key's query nowhere", () => {
    expect(pathOf("/key/info?key=sk-secret")).toBe("/key/info")
    expect(pathOf(undefined)).toBe("/")
  })
})
