/**
 * An upstream that misbehaves, behind the proxy example (a spawned `npm start` over
 * SQLite) and behind the Hono adapter in process: it never answers, resets the
 * connection half-way through a JSON body, answers 200 with a body that is not JSON,
 * streams without a usage chunk, or drops a stream half-way.
 *
 * The client gets a SPEC 9 error (504 for the silence, 502 for the rest) or the stream
 * as the upstream sent it, and the money follows SPEC 7: a call that delivered nothing
 * usable releases its hold; a delivered stream without usage is charged by estimate
 * (the prompt estimate and the delivered text, counted); a stream cut short is charged
 * for what was delivered, as `partial`. No hold is left open.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TokenEstimator } from "../../src/index.js"
import * as FakeUpstream from "../support/fakeUpstream.js"
import { at } from "../support/httpClient.js"
import * as Harness from "../support/httpHarness.js"
import * as Proxy from "../support/proxyProcess.js"

const PROXY_MASTER_KEY = "sk-faults-master-4b1d9e27c3a8"
// The proxy's model costs one micro-dollar per token either way.
const PRICE = 0.000001
// How long an upstream may stay silent before the call is given up, in each deployment.
const TIMEOUT_MS = 800

interface Target {
  /** The model name this deployment serves from the fake upstream. */
  readonly model: string
  readonly upstream: () => FakeUpstream.FakeUpstream
  /** A management call as the master; returns the parsed JSON. */
  readonly admin: (path: string, body?: unknown) => Promise<{ status: number; json: unknown }>
  readonly url: () => string
  /** The cost of a call's tokens in this deployment, in USD. */
  readonly cost: (promptTokens: number, completionTokens: number) => number
}

interface Answer {
  readonly status: number
  readonly json: unknown
  readonly bytes: Buffer
  /** Whether reading the body failed (the connection broke) instead of ending. */
  readonly broke: boolean
}

const call = async (target: Target, key: string, body: unknown, headers: Record<string, string>) => {
  const response = await fetch(`${target.url()}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })
  const chunks: Array<Uint8Array> = []
  let broke = false
  const reader = response.body?.getReader()
  try {
    for (;;) {
      const next = await reader?.read()
      if (next === undefined || next.done) break
      chunks.push(next.value)
    }
  } catch {
    broke = true
  }
  const bytes = Buffer.concat(chunks)
  let json: unknown
  try {
    json = JSON.parse(bytes.toString("utf8"))
  } catch {
    json = undefined
  }
  return { status: response.status, json, bytes, broke } satisfies Answer
}

const scenarios = (name: string, target: Target) => {
  const chat = (extra: Record<string, unknown> = {}) => ({
    model: target.model,
    messages: [{ role: "user", content: "Tell me something." }],
    max_tokens: 300,
    ...extra
  })
  const newKey = async () => {
    const reply = await target.admin("/key/generate", { team_id: "faults", max_budget: 5 })
    expect(reply.status).toBe(200)
    const key = at(reply.json, "key")
    if (typeof key !== "string") throw new Error("no key")
    return key
  }
  const keyInfo = async (key: string) => {
    const reply = await target.admin(`/key/info?key=${encodeURIComponent(key)}`)
    expect(reply.status).toBe(200)
    return { spend: at(reply.json, "info", "spend"), held: at(reply.json, "info", "held_spend") }
  }
  const logs = async (key: string): Promise<ReadonlyArray<unknown>> => {
    const reply = await target.admin(`/spend/logs?key=${encodeURIComponent(key)}`)
    expect(reply.status).toBe(200)
    return Array.isArray(reply.json) ? reply.json : []
  }
  const released = async (key: string) => {
    expect(await keyInfo(key)).toEqual({ spend: 0, held: 0 })
    expect(await logs(key)).toEqual([])
  }
  const upstreamError = (answer: Answer, status: number) => {
    expect(answer.status).toBe(status)
    expect(answer.json).toMatchObject({
      error: { type: "upstream_error", code: "upstream_failed", param: null }
    })
    expect(typeof at(answer.json, "error", "message")).toBe("string")
  }
  /** The one spend log row of `key`, checked to be charged exactly its tokens. */
  const chargedRow = async (key: string) => {
    const [row, ...more] = await logs(key)
    expect(more).toEqual([])
    const prompt = Number(at(row, "prompt_tokens"))
    const completion = Number(at(row, "completion_tokens"))
    expect(await keyInfo(key)).toEqual({ spend: target.cost(prompt, completion), held: 0 })
    return { row, prompt, completion }
  }

  describe(name, () => {
    beforeAll(async () => {
      const team = await target.admin("/team/new", {
        team_id: "faults",
        team_alias: "Faults",
        max_budget: 50
      })
      expect(team.status).toBe(200)
    })

    it("an upstream that never answers: 504 upstream_error, the hold released", async () => {
      const key = await newKey()
      const answer = await call(target, key, chat(), { "x-fake-hang": "1" })
      upstreamError(answer, 504)
      await released(key)
    })

    it("a connection reset half-way through a JSON body: 502 upstream_error, the hold released", async () => {
      const key = await newKey()
      const answer = await call(target, key, chat(), { "x-fake-reset-after": "40" })
      upstreamError(answer, 502)
      await released(key)
    })

    it("a 200 whose body is not JSON: 502 upstream_error, the hold released", async () => {
      const key = await newKey()
      const answer = await call(target, key, chat(), { "x-fake-malformed": "1" })
      upstreamError(answer, 502)
      expect(at(answer.json, "error", "message")).toContain("not JSON")
      await released(key)
    })

    it("a connection dropped before any answer: 502 upstream_error, the hold released", async () => {
      const key = await newKey()
      upstreamError(await call(target, key, chat(), { "x-fake-drop": "1" }), 502)
      await released(key)
    })

    it("a stream without a usage chunk passes through unchanged and is charged by estimate", async () => {
      const key = await newKey()
      const before = target.upstream().streams.length
      const answer = await call(target, key, chat({ stream: true }), {
        "x-fake-no-usage": "1",
        "x-fake-chunks": "6"
      })
      expect(answer.status).toBe(200)
      expect(answer.broke).toBe(false)
      const sent = target.upstream().streams[before]
      expect(answer.bytes.equals(Buffer.concat(sent?.sent ?? []))).toBe(true)
      expect(answer.bytes.toString("utf8")).toContain("data: [DONE]")
      const { row, prompt, completion } = await chargedRow(key)
      expect(row).toMatchObject({ status: "success" })
      expect(prompt).toBeGreaterThan(0)
      expect(completion).toBe(TokenEstimator.countText("word0 word1 word2 word3 word4 word5 "))
    })

    it("a stream dropped half-way: the client sees the bytes sent and a broken end; charged as partial", async () => {
      const key = await newKey()
      const before = target.upstream().streams.length
      const answer = await call(target, key, chat({ stream: true }), {
        "x-fake-reset-after": "2",
        "x-fake-chunks": "6"
      })
      expect(answer.status).toBe(200)
      expect(answer.broke).toBe(true)
      const sent = target.upstream().streams[before]
      expect(answer.bytes.equals(Buffer.concat(sent?.sent ?? []))).toBe(true)
      expect(answer.bytes.toString("utf8")).not.toContain("[DONE]")
      const { row, prompt, completion } = await chargedRow(key)
      expect(row).toMatchObject({ status: "partial" })
      expect(prompt).toBeGreaterThan(0)
      expect(completion).toBe(TokenEstimator.countText("word0 word1 "))
    })

    it("after every fault, nothing is held on the team and a healthy call still works", async () => {
      const key = await newKey()
      const answer = await call(target, key, chat(), { "x-fake-usage": "12,34" })
      expect(answer.status).toBe(200)
      const { prompt, completion } = await chargedRow(key)
      expect([prompt, completion]).toEqual([12, 34])
      const team = await target.admin("/team/info?team_id=faults")
      expect(at(team.json, "team_info", "held_spend")).toBe(0)
    })
  })
}

const proxyConfig = (upstream: string) => `
model_list:
  - model_name: faulty
    litellm_params:
      model: openai/faulty-upstream
      api_base: ${upstream}/v1
      api_key: os.environ/FAULTS_UPSTREAM_KEY
      input_cost_per_token: ${PRICE}
      output_cost_per_token: ${PRICE}
      timeout: ${TIMEOUT_MS / 1000}
general_settings:
  master_key: os.environ/FAULTS_MASTER_KEY
`

const adminOver = (url: () => string, masterKey: string) => async (path: string, body?: unknown) => {
  const response = await fetch(`${url()}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${masterKey}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text) }
}

const round = (usd: number) => Number(usd.toFixed(9))

describe("upstream faults", () => {
  let upstream: FakeUpstream.FakeUpstream
  let proxy: Proxy.ProxyProcess
  let harness: Harness.Harness

  beforeAll(async () => {
    upstream = await FakeUpstream.start()
    proxy = await Proxy.start({
      config: proxyConfig(upstream.url),
      env: {
        FAULTS_MASTER_KEY: PROXY_MASTER_KEY,
        FAULTS_UPSTREAM_KEY: "sk-upstream-faults",
        DATABASE_URL: "sqlite:.teambudget/faults.db"
      }
    })
    harness = await Harness.start("hono", { upstreamTimeoutMs: TIMEOUT_MS })
  })
  afterAll(async () => {
    proxy?.kill()
    await harness?.close()
    await upstream?.close()
    if (proxy !== undefined) Proxy.removeWorkDir(proxy.dir)
  })

  scenarios("behind the proxy example", {
    model: "faulty",
    upstream: () => upstream,
    admin: adminOver(() => proxy.url, PROXY_MASTER_KEY),
    url: () => proxy.url,
    cost: (prompt, completion) => round((prompt + completion) * PRICE)
  })

  scenarios("behind the Hono adapter, in process", {
    // "small" costs $1/M prompt and $2/M completion tokens (test/support/runtime.ts).
    model: "small",
    upstream: () => harness.upstream,
    admin: adminOver(() => `${harness.url}/admin`, Harness.MASTER_KEY),
    url: () => harness.url,
    cost: (prompt, completion) => round(prompt * 0.000001 + completion * 0.000002)
  })

  it("the proxy is still serving and its log has a line for every faulty call", async () => {
    const health = await fetch(`${proxy.url}/health`)
    expect(health.status).toBe(200)
    const statuses = proxy.requests().filter((line) => line["path"] === "/v1/chat/completions")
    expect(statuses.map((line) => line["status"]).sort()).toEqual([200, 200, 200, 502, 502, 502, 504])
  })
})
