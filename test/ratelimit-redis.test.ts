import { describe, expect, it, vi } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Effect, Exit, Layer, Option, Redacted } from "effect"
import { Redis } from "ioredis"
import { RedisRateLimits } from "../src/index.js"
import { RateLimitStore } from "../src/store/RateLimitStore.js"
import { runRateLimitConformance } from "./conformance/rateLimits.js"
import { outage, proxyTo, sharedLimits } from "./support/rateLimitScenarios.js"
import { describeRedis, freshPrefix, redisUrl } from "./support/redis.js"

vi.setConfig({ testTimeout: 60_000 })

const store = (options: { port?: number; prefix?: string } = {}) =>
  Effect.map(
    Layer.build(
      RedisRateLimits.layer({
        url: Redacted.make(redisUrl(options.port)),
        prefix: options.prefix ?? freshPrefix(),
        commandTimeout: "1 second"
      })
    ),
    Context.get(RateLimitStore)
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): Option.Option<E> =>
  Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

describeRedis("Redis rate limits", () => {
  runRateLimitConformance("conformance", () =>
    RedisRateLimits.layer({ url: redisUrl(), prefix: freshPrefix() })
  )

  describe("two instances, two clients, one Redis", () => {
    sharedLimits(() =>
      Effect.gen(function* () {
        const prefix = freshPrefix()
        return [yield* store({ prefix }), yield* store({ prefix })] as const
      })
    )
  })

  it.live("fails at once with StoreUnavailable while Redis is unreachable, then recovers", () =>
    Effect.gen(function* () {
      const proxy = yield* proxyTo(6379)
      // The client reconnects by itself once Redis answers again.
      yield* outage(yield* store({ port: proxy.port }), proxy, "rate-limit store (redis) unavailable")
    }).pipe(Effect.scoped)
  )

  it.live("a server that cannot be reached fails the layer without showing the URL's password", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Layer.build(RedisRateLimits.layer({ url: Redacted.make("redis://:s3cret-pass@127.0.0.1:1") }))
      )
      const error = failureOf(exit)
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("StoreUnavailable"))
      expect(Option.map(error, (e) => e.message.includes("s3cret-pass"))).toEqual(Option.some(false))
      expect(Option.map(error, (e) => JSON.stringify(e).includes("s3cret-pass"))).toEqual(Option.some(false))
    }).pipe(Effect.scoped)
  )

  it.live("layerConfig reads the server from REDIS_URL", () =>
    Effect.gen(function* () {
      const limits = yield* Effect.map(
        Layer.build(
          RedisRateLimits.layerConfig({ prefix: freshPrefix() }).pipe(
            Layer.provide(
              Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", redisUrl()]])))
            )
          )
        ),
        Context.get(RateLimitStore)
      )
      const rules = [{ bucket: "key:k:requests", kind: "requests" as const, limit: 2 }]
      const decision = yield* limits.acquire({ ticketId: "t", rules, tokens: 0, now: 0, leaseMillis: 1 })
      expect(decision).toEqual({ _tag: "Admitted", remaining: [1] })
    }).pipe(Effect.scoped)
  )

  it.live("runs on a client the host owns, and leaves it open", () =>
    Effect.gen(function* () {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(redisUrl(), { enableOfflineQueue: false, lazyConnect: true })),
        (c) => Effect.promise(() => c.quit())
      )
      yield* Effect.promise(() => client.connect())
      const limits = yield* Effect.scoped(
        Effect.map(
          Layer.build(RedisRateLimits.layer({ client, prefix: freshPrefix() })),
          Context.get(RateLimitStore)
        )
      )
      const decision = yield* limits.acquire({
        ticketId: "t",
        rules: [{ bucket: "key:k:requests", kind: "requests", limit: 1 }],
        tokens: 0,
        now: Date.now(),
        leaseMillis: 60_000
      })
      expect(decision).toEqual({ _tag: "Admitted", remaining: [0] })
      expect(client.status).toBe("ready")
    }).pipe(Effect.scoped)
  )
})
