/**
 * What every framework adapter must show over real HTTP on loopback: the SPEC 1
 * scenario as a curl sequence, refusals, streamed and non-streamed settlement, an
 * upstream failure, a client abort, bad input at every management endpoint,
 * authorisation of member keys, and that no secret ever shows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Token } from "../../src/index.js"
import { at, type Client, make as makeClient, text } from "./httpClient.js"
import { type Framework, type Harness, MASTER_KEY, start } from "./httpHarness.js"

const chat = (model: string, maxTokens: number, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: "user", content: "hi" }],
  max_tokens: maxTokens,
  ...extra
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const eventually = async <A>(probe: () => Promise<A | undefined>, timeoutMs = 5000): Promise<A> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error("condition not met in time")
    await sleep(20)
  }
}

export const describeFramework = (framework: Framework) =>
  describe(`HTTP over ${framework}`, () => {
    let harness: Harness
    let client: Client
    const secrets: Array<string> = [MASTER_KEY, Token.hashToken(MASTER_KEY)]
    const remember = (key: string) => {
      secrets.push(key, Token.hashToken(key))
      return key
    }
    const keyInfo = async (key: string) => {
      const reply = await client.admin("GET", `/key/info?key=${encodeURIComponent(key)}`)
      expect(reply.status).toBe(200)
      return at(reply.json, "info")
    }

    beforeAll(async () => {
      harness = await start(framework)
      client = makeClient(harness.url)
    })
    afterAll(async () => {
      await harness.close()
    })

    it("SPEC 1: a member budget set to 50, then cleared with null, never bricks the member's key", async () => {
      const team = await client.admin("POST", "/team/new", {
        team_id: "spec1",
        team_alias: "Spec one",
        max_budget: 1000
      })
      expect(team.status).toBe(200)
      expect(team.json).toMatchObject({ team_id: "spec1", max_budget: 1000 })
      const added = await client.admin("POST", "/team/member_add", {
        team_id: "spec1",
        member: { user_id: "alice", role: "user" }
      })
      expect(added.status).toBe(200)
      const key = remember(await client.generateKey({ team_id: "spec1", user_id: "alice" }))

      const capped = await client.admin("POST", "/team/member_update", {
        team_id: "spec1",
        user_id: "alice",
        max_budget_in_team: 50
      })
      expect(capped.status).toBe(200)
      expect(at(capped.json, "litellm_budget_table", "max_budget")).toBe(50)

      const cleared = await client.admin("POST", "/team/member_update", {
        team_id: "spec1",
        user_id: "alice",
        max_budget_in_team: null
      })
      expect(cleared.status).toBe(200)
      expect(cleared.json).toMatchObject({ budget_id: null, litellm_budget_table: null })

      const info = await client.admin("GET", "/team/info?team_id=spec1")
      expect(info.status).toBe(200)
      expect(at(info.json, "team_memberships")).toEqual([
        expect.objectContaining({ user_id: "alice", budget_id: null, litellm_budget_table: null })
      ])

      const call = await client.llm("/v1/chat/completions", chat("small", 50), key, {
        "x-fake-usage": "20,30"
      })
      expect(call.status).toBe(200)
      expect(at(call.json, "choices", 0, "message", "content")).toBe("word0 word1 word2 word3 word4")
      // The team pool binds: $1000 less 20 × $1/M + 30 × $2/M.
      expect(call.headers.get("x-budget-remaining-usd")).toBe("999.99992")
      const teamAfter = await client.admin("GET", "/team/info?team_id=spec1")
      expect(at(teamAfter.json, "team_info", "spend")).toBe(0.00008)
    })

    it("a budget refusal is a 402 that names the scope, and charges nothing", async () => {
      const key = remember(await client.generateKey({ max_budget: 0.5, key_alias: "tiny-key" }))
      // "big" costs $0.01 a token: 100 output tokens alone need $1.
      const forwardedBefore = harness.upstream.received.length
      const refused = await client.llm("/v1/chat/completions", chat("big", 100), key)
      expect(refused.status).toBe(402)
      expect(refused.json).toMatchObject({
        error: { type: "budget_exceeded", code: "key_budget_exceeded", param: null }
      })
      expect(text(refused.json, "error", "message")).toContain("key tiny-key")
      expect(harness.upstream.received.length).toBe(forwardedBefore)

      await client.admin("POST", "/team/new", { team_id: "poor", team_alias: "Poor", max_budget: 0.5 })
      const teamKey = remember(await client.generateKey({ team_id: "poor" }))
      const teamRefusal = await client.llm("/v1/chat/completions", chat("big", 100), teamKey)
      expect(teamRefusal.status).toBe(402)
      expect(teamRefusal.json).toMatchObject({ error: { code: "team_budget_exceeded" } })
      expect(text(teamRefusal.json, "error", "message")).toContain("team poor")

      expect(await keyInfo(key)).toMatchObject({ spend: 0, held_spend: 0 })
      const unknown = await client.llm("/v1/chat/completions", chat("small", 10), "sk-not-a-key")
      expect(unknown.status).toBe(401)
      expect(unknown.json).toMatchObject({ error: { type: "authentication_error" } })
      const missing = await fetch(`${harness.url}/v1/chat/completions`, { method: "POST", body: "{}" })
      expect(missing.status).toBe(401)
    })

    it("a JSON call is settled from its usage; the remaining budget is sent after settlement", async () => {
      const key = remember(await client.generateKey({ max_budget: 10, rpm_limit: 600, tpm_limit: 90000 }))
      const call = await client.llm("/v1/chat/completions", chat("small", 500), key, {
        "x-fake-usage": "100,50"
      })
      expect(call.status).toBe(200)
      // 100 × $1/M + 50 × $2/M = $0.0002
      expect(call.headers.get("x-budget-remaining-usd")).toBe("9.9998")
      expect(call.headers.get("x-ratelimit-limit-requests")).toBe("600")
      expect(call.headers.get("x-ratelimit-limit-tokens")).toBe("90000")
      expect(await keyInfo(key)).toMatchObject({ spend: 0.0002, held_spend: 0 })

      const embedding = await client.llm("/v1/embeddings", { model: "small", input: "a fox" }, key, {
        "x-fake-usage": "40,0"
      })
      expect(embedding.status).toBe(200)
      // 40 prompt tokens at $1/M, nothing for output.
      expect(await keyInfo(key)).toMatchObject({ spend: 0.00024, held_spend: 0 })

      const withoutUsage = await client.llm("/v1/chat/completions", chat("small", 500), key, {
        "x-fake-no-usage": "1",
        "x-fake-chunks": "3"
      })
      expect(withoutUsage.status).toBe(200)
      const logs = await client.admin("GET", `/spend/logs?key=${encodeURIComponent(key)}`)
      const estimated = at(logs.json, 0)
      // No usage: the prompt estimate and the delivered text ("word0 word1 word2"), counted.
      expect(estimated).toMatchObject({ status: "success", model: "small" })
      expect(at(estimated, "completion_tokens")).toBeGreaterThan(0)
      expect(at(estimated, "completion_tokens")).toBeLessThan(500)
    })

    it("a streamed call passes every byte through and is charged from its usage chunk", async () => {
      const key = remember(await client.generateKey({ max_budget: 10 }))
      const before = harness.upstream.streams.length
      const reply = await client.stream(chat("small", 500, { stream: true }), key, {
        "x-fake-usage": "7,13",
        "x-fake-chunks": "9"
      })
      expect(reply.status).toBe(200)
      expect(reply.headers.get("content-type")).toContain("text/event-stream")
      expect(reply.headers.get("x-budget-remaining-usd")).not.toBeNull()
      const record = harness.upstream.streams[before]
      expect(record).toBeDefined()
      expect(reply.bytes.equals(Buffer.concat(record?.sent ?? []))).toBe(true)

      const upstreamRequest = harness.upstream.received.at(-1)
      expect(upstreamRequest?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } })
      expect(upstreamRequest?.headers.authorization).toBe("Bearer upstream-secret")

      // 7 × $1/M + 13 × $2/M = $0.000033, exactly.
      expect(await keyInfo(key)).toMatchObject({ spend: 0.000033, held_spend: 0 })
      const logs = await client.admin("GET", `/spend/logs?key=${encodeURIComponent(key)}`)
      expect(at(logs.json, 0)).toMatchObject({ prompt_tokens: 7, completion_tokens: 13, status: "success" })
    })

    it("an upstream 500 releases the hold; an unreachable upstream is a 502", async () => {
      // One "big" call holds about $1.08 (8 prompt + 100 output tokens): two holds would not fit in $1.50.
      const key = remember(await client.generateKey({ max_budget: 1.5 }))
      const failed = await client.llm("/v1/chat/completions", chat("big", 100), key, {
        "x-fake-status": "500"
      })
      expect(failed.status).toBe(500)
      expect(failed.json).toMatchObject({ error: { message: "upstream exploded" } })
      expect(await keyInfo(key)).toMatchObject({ spend: 0, held_spend: 0 })

      const dropped = await client.llm("/v1/chat/completions", chat("big", 100), key, { "x-fake-drop": "1" })
      expect(dropped.status).toBe(502)
      expect(dropped.json).toMatchObject({ error: { type: "upstream_error" } })
      expect(await keyInfo(key)).toMatchObject({ spend: 0, held_spend: 0 })

      const ok = await client.llm("/v1/chat/completions", chat("big", 100), key, { "x-fake-usage": "10,10" })
      expect(ok.status).toBe(200)
      expect(await keyInfo(key)).toMatchObject({ spend: 0.2, held_spend: 0 })
    })

    it("concurrent calls never spend past the budget: exactly as many pass as fit", async () => {
      // Each call holds and spends (8 prompt + 100 output tokens) × $0.01 = $1.08: ten fit in $10.80.
      const key = remember(await client.generateKey({ max_budget: 10.8 }))
      const replies = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 === 0
            ? client.llm("/v1/chat/completions", chat("big", 100), key, { "x-fake-usage": "8,100" })
            : client
                .stream(chat("big", 100, { stream: true }), key, { "x-fake-usage": "8,100" })
                .then((reply) => ({ status: reply.status }))
        )
      )
      const statuses = replies.map((reply) => reply.status)
      expect(statuses.filter((status) => status === 200)).toHaveLength(10)
      expect(statuses.filter((status) => status === 402)).toHaveLength(20)
      expect(await keyInfo(key)).toMatchObject({ spend: 10.8, held_spend: 0 })
    })

    it("a client that aborts mid-stream is charged for what was delivered, as partial", async () => {
      const key = remember(await client.generateKey({ max_budget: 10 }))
      const before = harness.upstream.streams.length
      const abort = new AbortController()
      const response = await fetch(`${harness.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key}`,
          "content-type": "application/json",
          "x-fake-chunks": "200",
          "x-fake-delay-ms": "20"
        },
        body: JSON.stringify(chat("small", 1000, { stream: true })),
        signal: abort.signal
      })
      expect(response.status).toBe(200)
      const reader = response.body?.getReader()
      let received = ""
      const decoder = new TextDecoder()
      while (reader !== undefined && !received.includes("word4 ")) {
        const { done, value } = await reader.read()
        if (done) break
        received += decoder.decode(value, { stream: true })
      }
      abort.abort()
      await reader?.cancel().catch(() => undefined)

      const record = await eventually(async () => harness.upstream.streams[before])
      await record.finished
      expect(record.closedEarly).toBe(true)
      const row = await eventually(async () => {
        const logs = await client.admin("GET", `/spend/logs?key=${encodeURIComponent(key)}`)
        return at(logs.json, 0) ?? undefined
      })
      expect(row).toMatchObject({ status: "partial", model: "small" })
      const completion = Number(at(row, "completion_tokens"))
      // At least the five words read, far fewer than the 200 the stream would have sent.
      expect(completion).toBeGreaterThanOrEqual(5)
      expect(completion).toBeLessThan(200)
      const info = await keyInfo(key)
      expect(at(info, "held_spend")).toBe(0)
      expect(Number(at(info, "spend"))).toBeGreaterThan(0)
    })

    it("bad input at every management endpoint is a 4xx naming the field, and changes nothing", async () => {
      await client.admin("POST", "/team/new", { team_id: "fixed", team_alias: "Fixed", max_budget: 100 })
      await client.admin("POST", "/team/member_add", { team_id: "fixed", member: { user_id: "bob" } })
      const key = remember(await client.generateKey({ team_id: "fixed", user_id: "bob", max_budget: 5 }))
      await client.admin("POST", "/user/new", { user_id: "dora", max_budget: 3 })
      await client.admin("POST", "/organization/new", { organization_id: "org1", organization_alias: "Org" })
      await client.admin("POST", "/customer/new", { user_id: "cust1", max_budget: 2 })
      const snapshot = async () =>
        Promise.all([
          client.admin("GET", "/team/info?team_id=fixed").then((r) => r.text),
          client.admin("GET", `/key/info?key=${encodeURIComponent(key)}`).then((r) => r.text),
          client.admin("GET", "/user/info?user_id=dora").then((r) => r.text),
          client.admin("GET", "/organization/info?organization_id=org1").then((r) => r.text),
          client.admin("GET", "/customer/info?end_user_id=cust1").then((r) => r.text)
        ])
      const before = await snapshot()

      const cases: ReadonlyArray<
        readonly [path: string, body: unknown, status: number, param: string | null]
      > = [
        ["/team/new", { team_alias: 5 }, 400, "team_alias"],
        ["/team/new", { team_alias: "x", max_budget: -1 }, 400, "max_budget"],
        ["/team/new", { team_alias: "x", budget_duration: "5w" }, 400, "budget_duration"],
        ["/team/new", { team_alias: "x", tpm_limit: 1.5 }, 400, "tpm_limit"],
        ["/team/new", { team_alias: "x", colour: "red" }, 400, "colour"],
        ["/team/new", { team_id: "fixed", team_alias: "again" }, 400, null],
        ["/team/update", { team_id: "fixed", max_budget: "100" }, 400, "max_budget"],
        ["/team/update", { team_id: "fixed", team_alias: "changed", max_budget: -5 }, 400, "max_budget"],
        ["/team/update", { team_id: "fixed", budget_duration: "1 month" }, 400, "budget_duration"],
        ["/team/update", { team_id: "nope", max_budget: 1 }, 404, null],
        ["/team/member_add", { team_id: "fixed", member: { user_id: 3 } }, 400, "member.user_id"],
        [
          "/team/member_add",
          { team_id: "fixed", member: [{ user_id: "x", role: "owner" }] },
          400,
          "member.0.role"
        ],
        ["/team/member_add", { team_id: "nope", member: { user_id: "zed" } }, 404, null],
        [
          "/team/member_update",
          { team_id: "fixed", user_id: "bob", max_budget_in_team: -5 },
          400,
          "max_budget_in_team"
        ],
        [
          "/team/member_update",
          { team_id: "fixed", user_id: "bob", max_budget_in_team: true },
          400,
          "max_budget_in_team"
        ],
        ["/team/member_update", { team_id: "fixed", user_id: "nobody", max_budget_in_team: 5 }, 404, null],
        ["/team/member_delete", { team_id: "fixed" }, 400, "user_id"],
        ["/team/member_delete", { team_id: "fixed", user_id: "nobody" }, 404, null],
        ["/team/delete", { team_ids: "fixed" }, 400, "team_ids"],
        ["/team/delete", { team_ids: ["fixed", "nope"] }, 404, null],
        ["/key/generate", { max_budget: -1 }, 400, "max_budget"],
        ["/key/generate", { duration: "forever" }, 400, "duration"],
        ["/key/generate", { team_id: "nope" }, 404, null],
        ["/key/update", { key, max_budget: -1 }, 400, "max_budget"],
        ["/key/update", { key, max_budget: 1e12 }, 400, "max_budget"],
        ["/key/update", { key: "sk-unknown-key", max_budget: 1 }, 404, null],
        ["/key/delete", { keys: [] }, 400, "keys"],
        ["/key/delete", { keys: ["sk-unknown-key"] }, 404, null],
        ["/key/block", { key: 5 }, 400, "key"],
        ["/key/unblock", { key: "sk-unknown-key" }, 404, null],
        ["/user/new", { user_id: "u", max_budget: -1 }, 400, "max_budget"],
        ["/user/update", { user_id: "dora", rpm_limit: -1 }, 400, "rpm_limit"],
        ["/user/update", { user_id: "nobody", max_budget: 1 }, 404, null],
        ["/organization/new", { organization_alias: "" }, 400, "organization_alias"],
        ["/organization/update", { organization_id: "org1", max_budget: null, models: 5 }, 400, "models"],
        ["/organization/update", { organization_id: "nope", max_budget: 1 }, 404, null],
        ["/customer/new", { user_id: "c2", budget_duration: "1y" }, 400, "budget_duration"],
        ["/customer/update", { user_id: "cust1", max_budget: {} }, 400, "max_budget"],
        ["/customer/update", { user_id: "nobody", max_budget: 1 }, 404, null]
      ]
      for (const [path, body, status, param] of cases) {
        const reply = await client.admin("POST", path, body)
        expect({ path, body, status: reply.status }).toEqual({ path, body, status })
        expect({ path, body, param: at(reply.json, "error", "param") }).toEqual({ path, body, param })
        expect(typeof at(reply.json, "error", "message")).toBe("string")
      }

      const gets: ReadonlyArray<readonly [path: string, status: number, param: string | null]> = [
        ["/team/info", 400, "team_id"],
        ["/team/info?team_id=nope", 404, null],
        ["/team/info?team_id=fixed&extra=1", 400, "extra"],
        ["/key/info?key=sk-unknown-key", 404, null],
        ["/user/info?user_id=nobody", 404, null],
        ["/organization/info?organization_id=nope", 404, null],
        ["/customer/info?end_user_id=nobody", 404, null],
        ["/spend/logs?start_date=yesterday", 400, "start_date"],
        ["/spend/logs?limit=0", 400, "limit"]
      ]
      for (const [path, status, param] of gets) {
        const reply = await client.admin("GET", path)
        expect({ path, status: reply.status, param: at(reply.json, "error", "param") }).toEqual({
          path,
          status,
          param
        })
      }

      // Every POST endpoint: malformed JSON, a body that is not an object, an oversized body.
      const posts = [
        "/team/new",
        "/team/update",
        "/team/member_add",
        "/team/member_update",
        "/team/member_delete",
        "/team/delete",
        "/key/generate",
        "/key/update",
        "/key/delete",
        "/key/block",
        "/key/unblock",
        "/user/new",
        "/user/update",
        "/organization/new",
        "/organization/update",
        "/customer/new",
        "/customer/update"
      ]
      const oversized = JSON.stringify({ team_id: "fixed", team_alias: "x".repeat(1_100_000) })
      for (const path of posts) {
        for (const raw of ['{"team_id": "fixed", ', "[1, 2]", "", oversized]) {
          const reply = await client.admin("POST", path, undefined, { raw })
          expect({ path, raw: raw.slice(0, 20), status: reply.status }).toEqual({
            path,
            raw: raw.slice(0, 20),
            status: 400
          })
          expect(reply.json).toMatchObject({ error: { type: "invalid_request_error", param: null } })
        }
      }
      const wrongMethod = await client.admin("GET", "/team/new")
      expect(wrongMethod.status).toBe(405)
      const noRoute = await client.admin("POST", "/team/nothing", {})
      expect(noRoute.status).toBe(404)

      expect(await snapshot()).toEqual(before)
    })

    it("a member's key cannot create teams, raise budgets or read another team; a team admin manages only its team", async () => {
      await client.admin("POST", "/team/new", { team_id: "squad", team_alias: "Squad", max_budget: 10 })
      await client.admin("POST", "/team/new", { team_id: "other", team_alias: "Other", max_budget: 10 })
      await client.admin("POST", "/team/member_add", {
        team_id: "squad",
        member: [
          { user_id: "boss", role: "admin" },
          { user_id: "carol", role: "user" }
        ]
      })
      const member = remember(await client.generateKey({ team_id: "squad", user_id: "carol" }))
      const admin = remember(await client.generateKey({ team_id: "squad", user_id: "boss" }))
      const forbidden = async (method: "GET" | "POST", path: string, body: unknown, key: string) => {
        const reply = await client.admin(method, path, body, { key })
        expect({ path, status: reply.status }).toEqual({ path, status: 403 })
        expect(reply.json).toMatchObject({ error: { type: "permission_error" } })
      }
      const teamBefore = await client.admin("GET", "/team/info?team_id=squad")

      await forbidden("POST", "/team/new", { team_alias: "mine" }, member)
      await forbidden("POST", "/team/update", { team_id: "squad", max_budget: 1_000_000 }, member)
      await forbidden(
        "POST",
        "/team/member_update",
        { team_id: "squad", user_id: "carol", max_budget_in_team: 1000 },
        member
      )
      await forbidden("POST", "/key/update", { key: member, max_budget: 1000 }, member)
      await forbidden("GET", "/team/info?team_id=other", undefined, member)
      await forbidden("GET", "/team/info?team_id=squad", undefined, member)
      await forbidden("GET", `/key/info?key=${encodeURIComponent(admin)}`, undefined, member)
      const own = await client.admin("GET", "/key/info", undefined, { key: member })
      expect(own.status).toBe(200)
      expect(at(own.json, "info", "user_id")).toBe("carol")

      await forbidden("POST", "/team/new", { team_alias: "boss's own" }, admin)
      await forbidden("GET", "/team/info?team_id=other", undefined, admin)
      await forbidden("POST", "/team/member_add", { team_id: "other", member: { user_id: "boss" } }, admin)
      const managed = await client.admin(
        "POST",
        "/team/member_update",
        { team_id: "squad", user_id: "carol", max_budget_in_team: 2 },
        { key: admin }
      )
      expect(managed.status).toBe(200)
      const read = await client.admin("GET", "/team/info?team_id=squad", undefined, { key: admin })
      expect(read.status).toBe(200)
      expect(at(read.json, "team_info", "max_budget")).toBe(at(teamBefore.json, "team_info", "max_budget"))
      const unauthenticated = await fetch(`${harness.url}/admin/team/info?team_id=squad`)
      expect(unauthenticated.status).toBe(401)
    })

    it("health and readiness answer without a key", async () => {
      const health = await fetch(`${harness.url}/admin/health`)
      expect(health.status).toBe(200)
      const ready = await fetch(`${harness.url}/admin/health/readiness`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({ status: "healthy", db: "connected" })
    })

    it("no response, error or log line contains a plaintext key, a key hash or the master key", () => {
      expect(secrets.length).toBeGreaterThan(10)
      expect(client.seen.length).toBeGreaterThan(50)
      const everything = [...client.seen, ...harness.logs]
      for (const secret of secrets) {
        const leaks = everything.filter((line) => line.includes(secret))
        expect(leaks).toEqual([])
      }
      // Nor did a virtual key ever reach the upstream.
      const forwarded = harness.upstream.received.map((r) => JSON.stringify(r))
      for (const secret of secrets) expect(forwarded.filter((line) => line.includes(secret))).toEqual([])
    })
  })
