/**
 * Rate limits over real HTTP through every framework adapter: admitted responses carry
 * what is left, a refusal is a 429 with `Retry-After`, all four `x-ratelimit-*` headers
 * (what every kind has left, the refused request not counted) and the refusing scope in
 * its body.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { at, type Client, make as makeClient, text } from "../support/httpClient.js"
import { type Framework, type Harness, start } from "../support/httpHarness.js"

const chat = (maxTokens: number) => ({
  model: "small",
  messages: [{ role: "user", content: "hi" }],
  max_tokens: maxTokens
})

const header = (headers: Headers, name: string): string | null => headers.get(name)

const frameworks: ReadonlyArray<Framework> = ["hono", "express", "fastify"]

for (const framework of frameworks) {
  describe(`rate limits over ${framework}`, () => {
    let harness: Harness
    let client: Client

    beforeAll(async () => {
      harness = await start(framework)
      client = makeClient(harness.url)
    })
    afterAll(async () => {
      await harness.close()
    })

    it("admitted responses carry what is left; the third request a minute is a 429 naming the team", async () => {
      const team = await client.admin("POST", "/team/new", {
        team_id: `rl-${framework}`,
        team_alias: "Limited",
        rpm_limit: 2,
        tpm_limit: 100_000
      })
      expect(team.status).toBe(200)
      const key = await client.generateKey({ team_id: `rl-${framework}` })
      const forwardedBefore = harness.upstream.received.length

      const first = await client.llm("/v1/chat/completions", chat(10), key)
      expect(first.status).toBe(200)
      expect(header(first.headers, "x-ratelimit-limit-requests")).toBe("2")
      expect(header(first.headers, "x-ratelimit-remaining-requests")).toBe("1")
      expect(header(first.headers, "x-ratelimit-limit-tokens")).toBe("100000")
      const tokensLeft = Number(header(first.headers, "x-ratelimit-remaining-tokens"))
      expect(tokensLeft).toBeGreaterThan(99_900)
      expect(tokensLeft).toBeLessThan(100_000)

      const second = await client.llm("/v1/chat/completions", chat(10), key)
      expect(second.status).toBe(200)
      expect(header(second.headers, "x-ratelimit-remaining-requests")).toBe("0")

      const third = await client.llm("/v1/chat/completions", chat(10), key)
      expect(third.status).toBe(429)
      const retryAfter = Number(header(third.headers, "retry-after"))
      expect(Number.isInteger(retryAfter)).toBe(true)
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(30)
      expect(header(third.headers, "x-ratelimit-limit-requests")).toBe("2")
      expect(header(third.headers, "x-ratelimit-remaining-requests")).toBe("0")
      expect(header(third.headers, "x-ratelimit-limit-tokens")).toBe("100000")
      // What the two admitted requests really used (it returns at 0.6 ms a token); the refused one took none.
      const tokensAfter = Number(header(third.headers, "x-ratelimit-remaining-tokens"))
      expect(tokensAfter).toBeGreaterThan(99_900)
      expect(tokensAfter).toBeLessThanOrEqual(100_000)
      expect(at(third.json, "error", "type")).toBe("rate_limit_error")
      expect(at(third.json, "error", "code")).toBe("team_rate_limited")
      expect(text(third.json, "error", "message")).toContain(`team rl-${framework}`)
      // Only the admitted requests reached the upstream.
      expect(harness.upstream.received.length - forwardedBefore).toBe(2)
    })

    it("a tokens refusal carries what is left of both kinds", async () => {
      // 10 a minute: a request comes back only after 6 s, far longer than this test.
      const key = await client.generateKey({ key_alias: `tpm-${framework}`, tpm_limit: 1000, rpm_limit: 10 })
      // The first request really uses 700 tokens: settling it leaves about 300.
      const admitted = await client.llm("/v1/chat/completions", chat(600), key, { "x-fake-usage": "300,400" })
      expect(admitted.status).toBe(200)
      const refused = await client.llm("/v1/chat/completions", chat(600), key)
      expect(refused.status).toBe(429)
      expect(Number(header(refused.headers, "retry-after"))).toBeGreaterThanOrEqual(1)
      expect(header(refused.headers, "x-ratelimit-limit-tokens")).toBe("1000")
      expect(Number(header(refused.headers, "x-ratelimit-remaining-tokens"))).toBeLessThan(600)
      expect(header(refused.headers, "x-ratelimit-limit-requests")).toBe("10")
      // The admitted request counted; the refused one did not.
      expect(header(refused.headers, "x-ratelimit-remaining-requests")).toBe("9")
      expect(at(refused.json, "error", "code")).toBe("key_rate_limited")
      expect(text(refused.json, "error", "message")).toContain(`key tpm-${framework}`)
    })
  })
}
