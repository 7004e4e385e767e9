/**
 * The proxy example end to end, as a user runs it: `npm start -- --config config.yaml`
 * as a child process, a fake OpenAI-compatible upstream on loopback, and plain HTTP.
 * Each store has its own test file running these scenarios, so the three run side by
 * side.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { TokenEstimator } from "../../src/index.js"
import * as FakeUpstream from "../support/fakeUpstream.js"
import * as Proxy from "../support/proxyProcess.js"

const MASTER_KEY = "sk-e2e-master-7f3c9a0b1d2e4f56"
const UPSTREAM_KEY = "sk-upstream-5e6f7a8b9c0d"
// One micro-dollar per token either way: a cost is its token count in millionths.
const PRICE = 0.000001

const config = (upstream: string) => `
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-test-upstream
      api_base: ${upstream}/v1
      api_key: os.environ/E2E_UPSTREAM_KEY
      input_cost_per_token: ${PRICE}
      output_cost_per_token: ${PRICE}
      max_tokens: 1000
  - model_name: other-model
    litellm_params:
      model: openai/other-upstream
      api_base: ${upstream}/v1
      api_key: os.environ/E2E_UPSTREAM_KEY
      input_cost_per_token: ${PRICE}
      output_cost_per_token: ${PRICE}
general_settings:
  master_key: os.environ/E2E_MASTER_KEY
  database_url: os.environ/E2E_DATABASE_URL
`

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: Record<string, unknown>
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const at = (value: unknown, ...path: ReadonlyArray<string | number>): unknown =>
  path.reduce<unknown>(
    (current, step) => (isRecord(current) || Array.isArray(current) ? Reflect.get(current, step) : undefined),
    value
  )

const reply = async (response: Response): Promise<Reply> => {
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json: isRecord(json) ? json : {} }
}

const client = (url: string) => {
  const admin = async (path: string, body?: unknown): Promise<Reply> =>
    reply(
      await fetch(`${url}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
    )
  const chat = async (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    reply(
      await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hello there" }], ...body })
      })
    )
  const generate = async (body: Record<string, unknown>): Promise<string> => {
    const generated = await admin("/key/generate", body)
    expect(generated.status, generated.text).toBe(200)
    const key = generated.json["key"]
    if (typeof key !== "string") throw new Error(`no key in ${generated.text}`)
    return key
  }
  return { admin, chat, generate }
}

const spendOf = async (api: ReturnType<typeof client>, query: string): Promise<number> => {
  const info = await api.admin(query)
  expect(info.status, info.text).toBe(200)
  const spend = at(info.json, "info", "spend") ?? at(info.json, "team_info", "spend") ?? info.json["spend"]
  if (typeof spend !== "number") throw new Error(`no spend in ${info.text}`)
  return spend
}

const micro = (tokens: number) => Number((tokens * PRICE).toFixed(9))

export const runScenarios = (store: string, databaseUrl: () => string) => {
  let upstream: FakeUpstream.FakeUpstream
  let proxy: Proxy.ProxyProcess
  let api: ReturnType<typeof client>
  const keys: Array<string> = []
  const env = () => ({
    E2E_MASTER_KEY: MASTER_KEY,
    E2E_UPSTREAM_KEY: UPSTREAM_KEY,
    E2E_DATABASE_URL: databaseUrl()
  })

  beforeAll(async () => {
    upstream = await FakeUpstream.start()
    proxy = await Proxy.start({ config: config(upstream.url), env: env() })
    api = client(proxy.url)
  })

  afterAll(async () => {
    proxy?.kill()
    await upstream?.close()
    if (proxy !== undefined) Proxy.removeWorkDir(proxy.dir)
  })

  it(`[${store}] SPEC 1: a member budget set, then cleared with null; the member's key keeps working`, async () => {
    expect(
      (await api.admin("/team/new", { team_id: "research", team_alias: "research", max_budget: 100 })).status
    ).toBe(200)
    const added = await api.admin("/team/member_add", {
      team_id: "research",
      member: { user_id: "alice", role: "user" }
    })
    expect(added.status, added.text).toBe(200)
    const capped = await api.admin("/team/member_update", {
      team_id: "research",
      user_id: "alice",
      max_budget_in_team: 50
    })
    expect(capped.status, capped.text).toBe(200)
    const cleared = await api.admin("/team/member_update", {
      team_id: "research",
      user_id: "alice",
      max_budget_in_team: null
    })
    expect(cleared.status, cleared.text).toBe(200)
    const info = await api.admin("/team/info?team_id=research")
    expect(info.status).toBe(200)
    expect(at(info.json, "team_memberships", 0, "user_id")).toBe("alice")
    expect(at(info.json, "team_memberships", 0, "litellm_budget_table")).toBeNull()

    const key = await api.generate({ team_id: "research", user_id: "alice", key_alias: "alice-laptop" })
    keys.push(key)
    const answered = await api.chat(key, { model: "gpt-test" })
    expect(answered.status, answered.text).toBe(200)
    expect(Number(answered.headers.get("x-budget-remaining-usd"))).toBeGreaterThan(99)
    // The upstream got its own name for the model and its own key, never the caller's.
    const received = upstream.received.at(-1)
    expect(received?.body["model"]).toBe("gpt-test-upstream")
    expect(received?.headers["authorization"]).toBe(`Bearer ${UPSTREAM_KEY}`)
    expect(JSON.stringify(received?.headers)).not.toContain(key)
  })

  it(`[${store}] a team pool runs out: 402 naming the team, spend within the budget`, async () => {
    await api.admin("/team/new", { team_id: "pool", team_alias: "pool", max_budget: 0.0005 })
    const key = await api.generate({ team_id: "pool" })
    keys.push(key)
    const statuses: Array<number> = []
    let refusal: Reply | undefined
    for (let i = 0; i < 20 && refusal === undefined; i++) {
      const answer = await api.chat(key, { model: "gpt-test", max_tokens: 100 }, { "x-fake-usage": "20,100" })
      statuses.push(answer.status)
      if (answer.status !== 200) refusal = answer
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0)
    expect(refusal?.status).toBe(402)
    expect(at(refusal?.json, "error", "type")).toBe("budget_exceeded")
    expect(at(refusal?.json, "error", "code")).toBe("team_budget_exceeded")
    expect(String(at(refusal?.json, "error", "message"))).toContain("pool")
    expect(await spendOf(api, "/team/info?team_id=pool")).toBeLessThanOrEqual(0.0005)
  })

  it(`[${store}] 100 concurrent calls against a budget that fits 10: exactly 10 pass, spend never over`, async () => {
    const body = { model: "gpt-test", max_tokens: 100, messages: [{ role: "user", content: "Hello there" }] }
    const estimate = TokenEstimator.estimateBody(body)
    if (Either.isLeft(estimate)) throw new Error("the body must estimate")
    const perCall = estimate.right.promptTokens + 100
    const budget = micro(10 * perCall)
    await api.admin("/team/new", { team_id: "rush", team_alias: "rush", max_budget: budget })
    const key = await api.generate({ team_id: "rush" })
    keys.push(key)
    // The upstream reports exactly the estimate, so each settled call costs what it held.
    const usage = `${estimate.right.promptTokens},100`
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => api.chat(key, body, { "x-fake-usage": usage }))
    )
    const statuses = answers.map((a) => a.status)
    expect(statuses.filter((s) => s === 200)).toHaveLength(10)
    expect(statuses.filter((s) => s === 402)).toHaveLength(90)
    const spend = await spendOf(api, "/team/info?team_id=rush")
    expect(spend).toBeCloseTo(budget, 9)
    expect(spend).toBeLessThanOrEqual(budget)
  })

  it(`[${store}] a streamed call passes through byte for byte and is charged from its usage chunk`, async () => {
    const key = await api.generate({ team_id: "research", key_alias: "streamer" })
    keys.push(key)
    const before = upstream.streams.length
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-fake-usage": "7,13" },
      body: JSON.stringify({
        model: "gpt-test",
        stream: true,
        messages: [{ role: "user", content: "Stream" }]
      })
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const bytes = Buffer.from(await response.arrayBuffer())
    const record = upstream.streams[before]
    expect(record).toBeDefined()
    expect(bytes.equals(Buffer.concat(record?.sent ?? []))).toBe(true)
    expect(bytes.toString("utf8")).toContain('"usage":{"prompt_tokens":7,"completion_tokens":13')
    // The guard asked the upstream for the usage chunk.
    expect(at(upstream.received.at(-1)?.body, "stream_options", "include_usage")).toBe(true)
    await expect.poll(() => spendOf(api, `/key/info?key=${encodeURIComponent(key)}`)).toBe(micro(20))
  })

  it(`[${store}] an expired key is refused with 401 key_expired`, async () => {
    const key = await api.generate({ team_id: "research", duration: "1s" })
    keys.push(key)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const answer = await api.chat(key, { model: "gpt-test" })
    expect(answer.status).toBe(401)
    expect(at(answer.json, "error", "code")).toBe("key_expired")
  })

  it(`[${store}] a blocked key is refused with 403; unblocked, it works again`, async () => {
    const key = await api.generate({ team_id: "research" })
    keys.push(key)
    expect((await api.chat(key, { model: "gpt-test" })).status).toBe(200)
    expect((await api.admin("/key/block", { key })).status).toBe(200)
    const refused = await api.chat(key, { model: "gpt-test" })
    expect(refused.status).toBe(403)
    expect(at(refused.json, "error", "type")).toBe("permission_error")
    expect(at(refused.json, "error", "code")).toBe("key_blocked")
    expect((await api.admin("/key/unblock", { key })).status).toBe(200)
    expect((await api.chat(key, { model: "gpt-test" })).status).toBe(200)
  })

  it(`[${store}] a model outside the key's allow-list is refused with 403, and /v1/models hides it`, async () => {
    const key = await api.generate({ team_id: "research", models: ["gpt-test"] })
    keys.push(key)
    const refused = await api.chat(key, { model: "other-model" })
    expect(refused.status).toBe(403)
    expect(at(refused.json, "error", "code")).toBe("model_not_allowed")
    expect((await api.chat(key, { model: "gpt-test" })).status).toBe(200)
    const listed = await reply(
      await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })
    )
    expect(listed.status).toBe(200)
    expect(at(listed.json, "data")).toEqual([
      { id: "gpt-test", object: "model", created: 0, owned_by: "teambudget" }
    ])
    const open = await api.generate({ team_id: "research" })
    keys.push(open)
    const all = await reply(
      await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${open}` } })
    )
    expect(at(all.json, "data", 1, "id")).toBe("other-model")
  })

  it(`[${store}] SIGTERM during a stream: the stream completes, its spend is recorded, exit 0`, async () => {
    const key = await api.generate({ team_id: "research", key_alias: "drain" })
    keys.push(key)
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        "x-fake-usage": "5,20",
        "x-fake-chunks": "20",
        "x-fake-delay-ms": "40"
      },
      body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "Long" }] })
    })
    expect(response.status).toBe(200)
    const reader = response.body?.getReader()
    if (reader === undefined) throw new Error("no body")
    const chunks: Array<Uint8Array> = []
    const first = await reader.read()
    if (first.value !== undefined) chunks.push(first.value)

    const exit = proxy.stop("SIGTERM")
    // Nothing new is served while the stream drains: no connection, or 503 on an open one.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const late = await fetch(`${proxy.url}/health`).then(
      (r) => r.status,
      () => "refused"
    )
    expect(
      ["refused", 503],
      "SIGTERM sent to npm never reached the proxy: the start script must `exec node ...`"
    ).toContain(late)

    for (;;) {
      const next = await reader.read()
      if (next.done) break
      chunks.push(next.value)
    }
    const text = Buffer.concat(chunks).toString("utf8")
    expect(text).toContain('"usage":{"prompt_tokens":5,"completion_tokens":20')
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true)
    expect(await exit).toBe(0)

    const line = proxy.requests().find((r) => r["key_alias"] === "drain")
    expect(line).toMatchObject({
      status: 200,
      spend: "success",
      prompt_tokens: 5,
      completion_tokens: 20,
      cost_usd: micro(25)
    })

    // A persistent store still has the charge after a restart.
    if (store !== "memory") {
      const again = await Proxy.start({ config: config(upstream.url), env: env(), dir: proxy.dir })
      try {
        expect(await spendOf(client(again.url), `/key/info?key=${encodeURIComponent(key)}`)).toBe(micro(25))
      } finally {
        const code = await again.stop("SIGTERM")
        again.kill()
        expect(code).toBe(0)
      }
    }
  })

  it(`[${store}] the output and the log never show a key, the master key or the upstream key`, () => {
    const output = proxy.output.join("\n")
    for (const secret of [MASTER_KEY, UPSTREAM_KEY, ...keys]) expect(output).not.toContain(secret)
    const lines = proxy.requests()
    expect(lines.length).toBeGreaterThan(100)
    const served = lines.find((l) => l["key_alias"] === "alice-laptop" && l["status"] === 200)
    expect(served).toMatchObject({
      team_id: "research",
      user_id: "alice",
      model: "gpt-test",
      status: 200,
      spend: "success"
    })
    // The provider's part of the request's time, and none for a request never forwarded.
    const latency = Number(served?.["latency_ms"])
    const upstream = Number(served?.["upstream_ms"])
    expect(upstream).toBeGreaterThan(0)
    expect(upstream).toBeLessThanOrEqual(latency)
    expect(lines.find((l) => l["status"] === 402)).toMatchObject({
      model: "gpt-test",
      error: "BudgetExceeded",
      upstream_ms: null
    })
  })
}
