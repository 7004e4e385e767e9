/**
 * The request a web forwarder gets holds its body as text: it reads like any request's
 * body, once, whichever way it is read; as the init of `fetch` or `new Request` it
 * carries its method, headers, body and signal; its signal is the caller's.
 */
import { createServer, type IncomingMessage } from "node:http"
import { inspect } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { UpstreamRequest } from "../../src/http/UpstreamRequest.js"
import { close, listen } from "../support/listen.js"

const TEXT = JSON.stringify({ model: "small", messages: [{ role: "user", content: "Hi, café ☕" }] })

const make = (signal: AbortSignal = new AbortController().signal) =>
  new UpstreamRequest(
    "http://guard.local/v1/chat/completions?x=1",
    {
      method: "POST",
      headers: () => [
        ["content-type", "application/json"],
        ["x-trace", "t-1"]
      ],
      signal: () => signal
    },
    TEXT
  )

interface Seen {
  readonly method: string
  readonly type: string | undefined
  readonly trace: string | ReadonlyArray<string> | undefined
  readonly body: string
}

const read = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req
      .on("data", (chunk: Buffer) => chunks.push(chunk))
      .once("end", () => resolve(Buffer.concat(chunks).toString()))
  })

describe("UpstreamRequest", () => {
  const seen: Array<Seen> = []
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      seen.push({
        method: req.method ?? "",
        type: req.headers["content-type"],
        trace: req.headers["x-trace"],
        body
      })
      res.end("ok")
    })
  })
  let url = ""
  beforeAll(async () => {
    url = await listen(server)
  })
  afterAll(() => close(server))

  it("is a Request with the caller's URL, method and headers", () => {
    const request = make()
    expect(request).toBeInstanceOf(Request)
    expect(request.url).toBe("http://guard.local/v1/chat/completions?x=1")
    expect(request.method).toBe("POST")
    expect(request.headers.get("x-trace")).toBe("t-1")
    expect(request.bodyUsed).toBe(false)
  })

  it("answers every member of the runtime's Request itself, as a request made from its parts would", () => {
    const request = make()
    const built = new Request(request.url, { method: "POST", headers: request.headers })
    const members = Object.getOwnPropertyNames(Request.prototype).filter(
      (name) => Object.getOwnPropertyDescriptor(Request.prototype, name)?.get !== undefined
    )
    expect(members.length).toBeGreaterThan(10)
    for (const name of members.filter((name) => !["headers", "signal", "body"].includes(name)))
      expect([name, Reflect.get(request, name)]).toEqual([name, Reflect.get(built, name)])
    expect(Object.prototype.toString.call(request)).toBe("[object Request]")
    expect(inspect(request)).toBe(
      "UpstreamRequest { method: POST, url: http://guard.local/v1/chat/completions?x=1 }"
    )
  })

  it("as the input of new Request, is refused rather than sent without its body", () => {
    expect(() => new Request(make())).toThrow(TypeError)
  })

  it("reads its body as text, JSON, bytes, an ArrayBuffer, a Blob and a stream, byte for byte", async () => {
    const bytes = new TextEncoder().encode(TEXT)
    expect(await make().text()).toBe(TEXT)
    expect(await make().json()).toEqual(JSON.parse(TEXT))
    expect(await make().bytes()).toEqual(bytes)
    expect(new Uint8Array(await make().arrayBuffer())).toEqual(bytes)
    const blob = await make().blob()
    expect(blob.type).toBe("application/json")
    expect(await blob.text()).toBe(TEXT)
    expect(await new Response(make().body).text()).toBe(TEXT)
  })

  it("is read once: a second read fails as on any request, and clone refuses a used body", async () => {
    const request = make()
    await request.text()
    expect(request.bodyUsed).toBe(true)
    await expect(request.json()).rejects.toThrow(TypeError)
    expect(() => request.clone()).toThrow(TypeError)
    const streamed = make()
    await new Response(streamed.body).text()
    expect(streamed.bodyUsed).toBe(true)
    await expect(streamed.text()).rejects.toThrow(TypeError)
  })

  it("reads its text after its body was only looked at, and the stream is then used", async () => {
    const request = make()
    const stream = request.body
    expect(request.bodyUsed).toBe(false)
    expect(await request.text()).toBe(TEXT)
    expect(request.bodyUsed).toBe(true)
    expect(stream.locked).toBe(true)
  })

  it("clones into a request with the same body, read independently", async () => {
    const request = make()
    const copy = request.clone()
    expect(copy).toBeInstanceOf(UpstreamRequest)
    expect(await copy.text()).toBe(TEXT)
    expect(await request.text()).toBe(TEXT)
  })

  it("as the init of fetch, sends its method, headers and body", async () => {
    seen.length = 0
    const response = await fetch(url, make())
    expect(await response.text()).toBe("ok")
    expect(seen).toEqual([{ method: "POST", type: "application/json", trace: "t-1", body: TEXT }])
  })

  it("as the init of new Request, gives that request its body", async () => {
    expect(await new Request(url, make()).text()).toBe(TEXT)
  })

  it("its signal is the caller's: a caller that goes away aborts the call made with it", async () => {
    const caller = new AbortController()
    const request = make(caller.signal)
    expect(request.signal).toBe(caller.signal)
    const hanging = createServer(() => undefined)
    const hangingUrl = await listen(hanging)
    try {
      const call = fetch(hangingUrl, request)
      caller.abort()
      await expect(call).rejects.toThrow()
    } finally {
      await close(hanging)
    }
  })
})
