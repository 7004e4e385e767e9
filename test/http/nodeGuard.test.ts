/**
 * The guard served straight on Node's `req`/`res` (what Express, Fastify and the proxy
 * use) answers exactly as the web `Request`/`Response` path does, writes a JSON answer
 * in one piece with its length, and enforces the body limit before reading further.
 */
import { createServer, type IncomingMessage, request as httpRequest, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LlmGuard from "../../src/http/LlmGuard.js"
import * as NodeBridge from "../../src/http/NodeBridge.js"
import { SpendLogRepo, TokenEstimator } from "../../src/index.js"
import * as FakeUpstream from "../support/fakeUpstream.js"
import { makeKey } from "../support/fixtures.js"
import { makeServices } from "../support/runtime.js"

const LIMIT = 1024

interface Answer {
  readonly status: number
  readonly headers: IncomingMessage["headers"]
  readonly body: string
}

/** One request on a fresh connection, so a refusal's effect on the connection shows. */
const call = (url: string, headers: Record<string, string>, body: string | Array<string>): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() })
      )
    })
    req.on("error", reject)
    for (const part of Array.isArray(body) ? body : [body]) req.write(part)
    req.end()
  })

const upstreamSeen: Array<{ readonly authorization: string | null; readonly body: string }> = []

const forward: LlmGuard.Forward = async (request) => {
  upstreamSeen.push({ authorization: request.headers.get("authorization"), body: await request.text() })
  const headers = new Headers([
    ["content-type", "application/json"],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["x-upstream", "yes"],
    ["content-length", "999"]
  ])
  return new Response(
    JSON.stringify({
      id: "chatcmpl-1",
      choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 7, completion_tokens: 3 }
    }),
    { headers }
  )
}

describe("the guard on Node's req/res", () => {
  const runtime = ManagedRuntime.make(Layer.merge(makeServices(), TokenEstimator.layer))
  const guard = LlmGuard.toWebHandler(runtime, { maxBodyBytes: LIMIT })
  // The same guard without its Node entry: served through web Request/Response.
  const webOnly: LlmGuard.Guard = (request, next) => guard(request, next)
  const servers: Array<Server> = []
  const urls = { node: "", web: "" }
  let token = ""

  const listen = async (
    handler: (req: IncomingMessage, res: Parameters<typeof NodeBridge.serve>[1]) => void
  ) => {
    const server = createServer(handler)
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    return `http://127.0.0.1:${typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0}`
  }

  beforeAll(async () => {
    token = await runtime.runPromise(makeKey())
    urls.node = await listen((req, res) => {
      if (guard.node === undefined) throw new Error("the guard has no Node entry")
      void guard.node(req, res, forward)
    })
    urls.web = await listen(
      (req, res) => void NodeBridge.serve(req, res, (request) => webOnly(request, forward))
    )
  })

  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    await runtime.dispose()
  })

  const chat = JSON.stringify({
    model: "small",
    messages: [{ role: "user", content: "Hello" }],
    max_tokens: 10
  })
  const headersFor = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    ...extra
  })

  it("answers as the web path does, in one piece with its length, without the caller's key upstream", async () => {
    upstreamSeen.length = 0
    const node = await call(`${urls.node}/v1/chat/completions`, headersFor(), chat)
    const web = await call(`${urls.web}/v1/chat/completions`, headersFor(), chat)
    expect(node.status).toBe(200)
    expect(node.body).toBe(web.body)
    expect(node.headers["content-length"]).toBe(String(Buffer.byteLength(node.body)))
    expect(node.headers["transfer-encoding"]).toBeUndefined()
    expect(node.headers["set-cookie"]).toEqual(["a=1", "b=2"])
    expect(node.headers["set-cookie"]).toEqual(web.headers["set-cookie"])
    for (const name of ["content-type", "x-upstream", "x-budget-remaining-usd"]) {
      expect(node.headers[name], name).toBe(web.headers[name])
    }
    expect(upstreamSeen).toEqual([
      { authorization: null, body: chat },
      { authorization: null, body: chat }
    ])
  })

  it("refuses a body past the limit at once when its length says so, and one that grows past it", async () => {
    const before = await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))
    const big = JSON.stringify({ model: "small", messages: [{ role: "user", content: "x".repeat(LIMIT) }] })
    const declared = await call(`${urls.node}/v1/chat/completions`, headersFor(), big)
    // No length given: the body arrives in chunks and is cut off once it passes the limit.
    const streamed = await call(
      `${urls.node}/v1/chat/completions`,
      headersFor({ "transfer-encoding": "chunked" }),
      [big.slice(0, 600), big.slice(600)]
    )
    for (const answer of [declared, streamed]) {
      expect(answer.status).toBe(400)
      expect(answer.body).toContain(`at most ${LIMIT} bytes`)
    }
    const after = await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))
    expect(after.length).toBe(before.length)
  })

  it("takes a body a parser already read", async () => {
    upstreamSeen.length = 0
    const server = await listen((req, res) => {
      if (guard.node === undefined) throw new Error("the guard has no Node entry")
      req.resume()
      req.on("end", () => void guard.node?.(req, res, forward, { parsedBody: JSON.parse(chat) }))
    })
    const answer = await call(`${server}/v1/chat/completions`, headersFor(), chat)
    expect(answer.status).toBe(200)
    expect(upstreamSeen).toEqual([{ authorization: null, body: chat }])
  })

  it("takes a Node forwarder on the web path too: a stream passes byte for byte and is charged its usage", async () => {
    const upstream = await FakeUpstream.start()
    try {
      const before = upstream.streams.length
      const response = await guard(
        new Request("http://localhost/v1/chat/completions", {
          method: "POST",
          headers: headersFor({ "x-fake-chunks": "6", "x-fake-usage": "11,6" }),
          body: JSON.stringify({ ...JSON.parse(chat), stream: true })
        }),
        upstream.nodeForward
      )
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe("text/event-stream")
      const received = Buffer.from(await response.arrayBuffer())
      const record = upstream.streams[before]
      expect(received.equals(Buffer.concat(record?.sent ?? []))).toBe(true)
      const rows = await runtime.runPromise(Effect.flatMap(SpendLogRepo, (repo) => repo.query({})))
      const streamed = rows.filter((row) => row.promptTokens === 11)
      expect(streamed).toHaveLength(1)
      expect(streamed[0]).toMatchObject({ status: "success", completionTokens: 6 })
    } finally {
      await upstream.close()
    }
  })
  it("a forwarder that first reads the signal after the caller left finds it aborted", async () => {
    let called = (): void => undefined
    const forwardCalled = new Promise<void>((resolve) => (called = resolve))
    let gone = (): void => undefined
    const callerGone = new Promise<void>((resolve) => (gone = resolve))
    const aborted: Array<boolean> = []
    const url = await listen((req, res) => {
      res.once("close", gone)
      if (guard.node === undefined) throw new Error("the guard has no Node entry")
      void guard.node(req, res, async (request) => {
        called()
        await callerGone
        aborted.push(request.signal.aborted)
        return new Response("{}", { headers: { "content-type": "application/json" } })
      })
    })
    const req = httpRequest(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: headersFor(),
      agent: false
    })
    req.on("error", () => undefined)
    req.end(chat)
    await forwardCalled
    req.destroy()
    await callerGone
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(aborted).toEqual([true])
  })
})
