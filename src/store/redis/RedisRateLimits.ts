/**
 * The rate-limit store on Redis, shared by every instance that points at the same
 * server (SPEC 8). Each operation is one Lua script, so one round trip that Redis runs
 * atomically over all the rules of a request: `acquire` checks every rule, then
 * writes every rule, or writes nothing.
 *
 * - A requests or tokens bucket is one string key holding its TAT, expiring ten
 *   minutes after the TAT so idle buckets vanish; a parallel bucket is a sorted set of
 *   leases scored by expiry, whose expired members are dropped as it is read.
 * - Time is the caller's (`now` from Effect's `Clock`), never the server's, so every
 *   store agrees and `TestClock` works.
 * - When Redis cannot be reached a request fails at once with `StoreUnavailable`
 *   (HTTP 503) instead of queueing: the client keeps no offline queue, never resends a
 *   command after a reconnect (a script that ran must not count twice), and gives up
 *   on a command after `commandTimeout`. It reconnects by itself in the background.
 * - It targets a single Redis server (or a primary with replicas). On Redis Cluster
 *   every key of one request must live in one hash slot: the default prefix carries the
 *   hash tag `{teambudget}`, which puts every bucket in the same slot (so on one node).
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { StoreUnavailable } from "../../domain/Errors.js"
import type {
  RateAcquire,
  RateComplete,
  RateDecision,
  RateLimitStoreShape,
  RateRule
} from "../RateLimitStore.js"
import { RateLimitStore } from "../RateLimitStore.js"
import * as RateScripts from "./RateScripts.js"

/** @since 0.1.0 */
export interface RedisRateLimitsOptions {
  /** Put before every key. Default `{teambudget}:rl` (a Redis Cluster hash tag). */
  readonly prefix?: string
  /**
   * A command that takes longer fails with `StoreUnavailable`, as does connecting.
   * Default 2 seconds. Applies to the client the layer makes from a URL.
   */
  readonly commandTimeout?: Duration.DurationInput
}

/** @since 0.1.0 */
export type RedisRateLimitsLayerOptions = RedisRateLimitsOptions &
  (
    | {
        /** `redis://[:password@]host:port[/db]`; kept out of every message. */
        readonly url: Redacted.Redacted<string> | string
      }
    | {
        /**
         * A client the host owns and closes. Give it `enableOfflineQueue: false` and a
         * `commandTimeout` so requests fail at once while Redis is away instead of
         * waiting for it (`commandTimeout` here applies to clients the layer makes).
         */
        readonly client: Redis
      }
  )

const DEFAULT_PREFIX = "{teambudget}:rl"
const DEFAULT_TIMEOUT = Duration.seconds(2)

const decodeReply = Schema.decodeUnknownOption(Schema.Array(Schema.String))

const KIND_CODE: Record<RateRule["kind"], string> = { requests: "r", tokens: "t", parallel: "p" }

/** Driver messages may name the server; a password in a URL is cut out all the same. */
const describe = (cause: unknown): string =>
  (cause instanceof Error ? cause.message : String(cause)).replace(/\/\/[^@/\s]*@/g, "//")

const unavailable = (cause: unknown) =>
  new StoreUnavailable({ operation: `rate-limit store (redis) unavailable: ${describe(cause)}` })

const failed = (reason: string) =>
  new StoreUnavailable({ operation: `rate-limit store (redis) unavailable: ${reason}` })

const isNoScript = (cause: unknown) => cause instanceof Error && cause.message.startsWith("NOSCRIPT")

const toNumber = (text: string | undefined): number => (text === undefined ? Number.NaN : Number(text))

const decide = (
  reply: ReadonlyArray<string>,
  rules: number
): Effect.Effect<RateDecision, StoreUnavailable> => {
  const [tag, ...rest] = reply
  if (tag === "A" && rest.length === rules) {
    return Effect.succeed({ _tag: "Admitted", remaining: rest.map(Number) })
  }
  if (tag === "R" && rest.length === rules + 2) {
    const [index, retryAfterMillis, ...remaining] = rest
    return Effect.succeed({
      _tag: "Refused",
      index: toNumber(index),
      retryAfterMillis: toNumber(retryAfterMillis),
      remaining: remaining.map(Number)
    })
  }
  return Effect.fail(failed("unexpected reply to acquire"))
}

/**
 * The store over a connected client. Its `commandTimeout` and `enableOfflineQueue`
 * decide how a request fares while Redis is away (see {@link layer}).
 *
 * @example
 * import { Redis } from "ioredis"
 * import { RedisRateLimits } from "teambudget"
 *
 * const store = RedisRateLimits.make(new Redis({ enableOfflineQueue: false }))
 * @since 0.1.0
 */
export const make = (client: Redis, options: RedisRateLimitsOptions = {}): RateLimitStoreShape => {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const keyOf = (rule: RateRule) => `${prefix}:${rule.kind === "parallel" ? "leases" : "tat"}:${rule.bucket}`
  const ruleArgs = (rules: ReadonlyArray<RateRule>) =>
    rules.flatMap((rule) => [KIND_CODE[rule.kind], String(rule.limit)])

  // ioredis's own `commandTimeout` bounds a command: racing a timer in Effect on every
  // call would cost more than the command itself.
  const run = (script: RateScripts.Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
    Effect.tryPromise({
      try: () =>
        client
          .evalsha(script.sha, keys.length, ...keys, ...args)
          .catch((cause: unknown) =>
            isNoScript(cause) ? client.eval(script.lua, keys.length, ...keys, ...args) : Promise.reject(cause)
          ),
      catch: unavailable
    })

  return {
    acquire: (request: RateAcquire) =>
      request.rules.length === 0
        ? Effect.succeed({ _tag: "Admitted", remaining: [] })
        : run(RateScripts.acquire, request.rules.map(keyOf), [
            String(request.now),
            String(request.leaseMillis),
            request.ticketId,
            String(request.tokens),
            ...ruleArgs(request.rules)
          ]).pipe(
            Effect.flatMap((reply) =>
              Option.match(decodeReply(reply), {
                onNone: () => Effect.fail(failed("unexpected reply to acquire")),
                onSome: (values) => decide(values, request.rules.length)
              })
            )
          ),
    complete: (request: RateComplete) =>
      request.rules.length === 0
        ? Effect.void
        : Effect.asVoid(
            run(RateScripts.complete, request.rules.map(keyOf), [
              String(request.now),
              request.ticketId,
              String(request.tokensDelta),
              request.refundRequest ? "1" : "0",
              ...ruleArgs(request.rules)
            ])
          )
  }
}

const clientOptions = (timeout: Duration.Duration): RedisOptions => ({
  lazyConnect: true,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  connectTimeout: Duration.toMillis(timeout),
  commandTimeout: Duration.toMillis(timeout),
  // Reconnect for as long as it takes, at most every two seconds.
  retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000)
})

/**
 * A client of our own for `url`: connected before the layer is ready (a server that
 * cannot be reached fails the layer with `StoreUnavailable`), quit when it is released.
 */
const ownClient = (url: string, timeout: Duration.Duration) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const client = new Redis(url, clientOptions(timeout))
      // Failures reach the requests that meet them; the event only needs a listener.
      client.on("error", () => {})
      return Effect.as(
        Effect.tapError(Effect.tryPromise({ try: () => client.connect(), catch: unavailable }), () =>
          Effect.sync(() => client.disconnect())
        ),
        client
      )
    }),
    (client) =>
      Effect.promise(() =>
        client.quit().then(
          () => undefined,
          () => client.disconnect()
        )
      )
  )

/**
 * The Redis rate-limit store: on a client of its own for `url` (connected at start,
 * quit on release), or on the host's `client` (left open).
 *
 * @example
 * import { Redacted } from "effect"
 * import { RedisRateLimits } from "teambudget"
 *
 * const limits = RedisRateLimits.layer({ url: Redacted.make("redis://127.0.0.1:6379") })
 * @since 0.1.0
 */
export const layer = (
  options: RedisRateLimitsLayerOptions
): Layer.Layer<RateLimitStore, StoreUnavailable> => {
  const timeout = Duration.decode(options.commandTimeout ?? DEFAULT_TIMEOUT)
  if ("client" in options) return Layer.succeed(RateLimitStore, make(options.client, options))
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  return Layer.scoped(
    RateLimitStore,
    Effect.map(ownClient(url, timeout), (client) => make(client, options))
  )
}

/**
 * {@link layer} with the URL read from `REDIS_URL` (kept `Redacted`).
 *
 * @example
 * import { RedisRateLimits } from "teambudget"
 *
 * const limits = RedisRateLimits.layerConfig({ prefix: "{billing}:rl" })
 * @since 0.1.0
 */
export const layerConfig = (
  options: RedisRateLimitsOptions = {}
): Layer.Layer<RateLimitStore, StoreUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.redacted("REDIS_URL"), (url) => layer({ ...options, url })))
