/**
 * The proxy example with its rate-limit counters in Redis (`REDIS_URL`), as a user runs
 * it: budgets in the memory store, requests counted by the shared Redis server under a
 * key prefix of this test's own, deleted afterwards.
 */
import { Redis } from "ioredis"
import { afterAll, beforeAll, expect, it } from "vitest"
import * as Proxy from "../support/proxyProcess.js"
import { describeRedis, freshPrefix, redisUrl } from "../support/redis.js"

const MASTER_KEY = "sk-e2e-master-redis-4b7e1f09"

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const at = (value: unknown, ...path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((current, step) => (isRecord(current) ? current[step] : undefined), value)

const post = async (url: string, token: string, body: unknown) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  const json: unknown = await response.json()
  return { status: response.status, headers: response.headers, json: isRecord(json) ? json : {} }
}

describeRedis("proxy example with rate-limit counters in Redis", () => {
  const prefix = freshPrefix()
  const redis = new Redis(redisUrl(), { lazyConnect: true })
  let proxy: Proxy.ProxyProcess | undefined

  beforeAll(async () => {
    await redis.connect()
    proxy = await Proxy.start({
      env: { DATABASE_URL: "memory:", MASTER_KEY, REDIS_URL: redisUrl(), REDIS_PREFIX: prefix }
    })
  })

  afterAll(async () => {
    if (proxy !== undefined) {
      await proxy.stop()
      Proxy.removeWorkDir(proxy.dir)
    }
    const keys = await redis.keys(`${prefix}:*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })

  it("rpm_limit 3: the fourth call is a 429 with Retry-After, and the counter is in Redis", async () => {
    if (proxy === undefined) throw new Error("the proxy did not start")
    expect(proxy.output).toContain("rate limits: redis://…")
    const generated = await post(`${proxy.url}/key/generate`, MASTER_KEY, { key_alias: "rl", rpm_limit: 3 })
    expect(generated.status).toBe(200)
    const { key, token_id: tokenId } = generated.json
    if (typeof key !== "string" || typeof tokenId !== "string") throw new Error("no key")
    const chat = () =>
      post(`${proxy?.url}/v1/chat/completions`, key, {
        model: "mock-gpt",
        max_tokens: 10,
        messages: [{ role: "user", content: "hi" }]
      })

    for (const left of ["2", "1", "0"]) {
      const admitted = await chat()
      expect(admitted.status).toBe(200)
      expect(admitted.headers.get("x-ratelimit-remaining-requests")).toBe(left)
    }
    const refused = await chat()
    expect(refused.status).toBe(429)
    // Three requests took the whole minute: the next one returns 20 s after the first.
    const retryAfter = Number(refused.headers.get("retry-after"))
    expect(Number.isInteger(retryAfter)).toBe(true)
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(20)
    expect(refused.headers.get("x-ratelimit-limit-requests")).toBe("3")
    expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0")
    expect(at(refused.json, "error", "type")).toBe("rate_limit_error")

    // The only key under the prefix: the key's requests bucket, named by its public id,
    // its TAT a full minute (three intervals) after the first request, set to expire.
    expect(await redis.keys(`${prefix}:*`)).toEqual([`${prefix}:tat:key:${tokenId}:requests`])
    const tat = Number(await redis.get(`${prefix}:tat:key:${tokenId}:requests`))
    expect(tat).toBeGreaterThan(Date.now() + 40_000)
    expect(await redis.pttl(`${prefix}:tat:key:${tokenId}:requests`)).toBeGreaterThan(0)
  })

  it("a REDIS_URL that is not a Redis URL stops start-up, naming the setting", async () => {
    await expect(
      Proxy.start({ env: { DATABASE_URL: "memory:", MASTER_KEY, REDIS_URL: "http://127.0.0.1:6379" } })
    ).rejects.toThrow("configuration: REDIS_URL must be a redis:// or rediss:// URL")
  })
})
