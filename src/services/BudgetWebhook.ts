/**
 * Sends every budget event to a webhook: a signed JSON `POST`, retried with capped,
 * jittered exponential backoff on connection errors, timeouts, 429 and 5xx.
 *
 * Headers: `x-teambudget-event-id` (the same for every attempt, so a receiver can
 * drop a repeat whose first reply was lost), `x-teambudget-timestamp` (Unix seconds)
 * and `x-teambudget-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
 * Check it with {@link verifySignature}.
 *
 * Nothing here is on the request path: events wait in a bounded queue (a receiver that
 * is down for long makes the sender drop new events and count them in
 * `teambudget_webhook_dropped_total`, rather than hold memory without bound).
 *
 * @since 0.1.0
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import {
  Clock,
  Config,
  type ConfigError,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  Queue,
  Redacted,
  Schedule
} from "effect"
import * as BudgetEvent from "../domain/BudgetEvent.js"
import { InvalidRequest, WebhookFailed } from "../domain/Errors.js"
import { BudgetEvents } from "./BudgetEvents.js"

/** @since 0.1.0 */
export interface WebhookOptions {
  /** An `http:` or `https:` URL. */
  readonly url: string
  /** The key of the HMAC signature; share it with the receiver. */
  readonly secret: Redacted.Redacted<string>
  /** Attempts per event, the first one included. Default 8. */
  readonly maxAttempts?: number
  /** The delay before the first retry; it doubles each time (with jitter). Default 1 second. */
  readonly backoff?: Duration.DurationInput
  /** The longest delay between two attempts. Default 1 minute. */
  readonly maxBackoff?: Duration.DurationInput
  /** One attempt that takes longer fails (and is retried). Default 10 seconds. */
  readonly timeout?: Duration.DurationInput
  /** Events waiting for delivery; more are dropped and counted. Default 1000. */
  readonly queueSize?: number
  /** Deliveries in flight at once. Default 4. */
  readonly concurrency?: number
}

/** Events dropped because the delivery queue was full. @since 0.1.0 */
export const dropped = Metric.counter("teambudget_webhook_dropped_total", {
  description: "Budget events dropped because the webhook delivery queue was full",
  incremental: true
})

/** Events given up on after every attempt failed (or a 4xx other than 429). @since 0.1.0 */
export const failed = Metric.counter("teambudget_webhook_failed_total", {
  description: "Budget events the webhook could not deliver",
  incremental: true
})

/** Events the receiver acknowledged with a 2xx. @since 0.1.0 */
export const delivered = Metric.counter("teambudget_webhook_delivered_total", {
  description: "Budget events delivered to the webhook",
  incremental: true
})

const secretOf = (secret: string | Redacted.Redacted<string>): string =>
  Redacted.isRedacted(secret) ? Redacted.value(secret) : secret

/**
 * The signature header of a body: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
 *
 * @example
 * import { Redacted } from "effect"
 * import { BudgetWebhook } from "teambudget"
 *
 * BudgetWebhook.sign(Redacted.make("whsec"), "1767225600", '{"type":"KeyExpiring"}') // "sha256=…"
 * @since 0.1.0
 */
export const sign = (secret: string | Redacted.Redacted<string>, timestamp: string, body: string): string =>
  `sha256=${createHmac("sha256", secretOf(secret)).update(`${timestamp}.${body}`).digest("hex")}`

/**
 * Checks a webhook signature in constant time. Give it the raw body, exactly as
 * received. Receivers should also refuse timestamps far from their own clock, which
 * stops replays.
 *
 * @example
 * import { BudgetWebhook } from "teambudget"
 *
 * const ok = BudgetWebhook.verifySignature(
 *   process.env.TEAMBUDGET_WEBHOOK_SECRET ?? "",
 *   request.headers["x-teambudget-timestamp"],
 *   rawBody,
 *   request.headers["x-teambudget-signature"]
 * )
 * @since 0.1.0
 */
export const verifySignature = (
  secret: string | Redacted.Redacted<string>,
  timestamp: string | undefined,
  body: string,
  header: string | undefined
): boolean => {
  if (timestamp === undefined || header === undefined) return false
  const expected = Buffer.from(sign(secret, timestamp, body))
  const given = Buffer.from(header)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

/** Where a log line may say it sent: no credentials, no query string. */
const describeTarget = (url: URL): string => `${url.origin}${url.pathname}`

/**
 * Credentials in the URL (`https://user:pass@host/`) become a Basic `authorization`
 * header, since `fetch` refuses a URL that carries them.
 */
const splitCredentials = (
  url: URL
): { readonly target: URL; readonly authorization: Option.Option<string> } => {
  if (url.username === "" && url.password === "") return { target: url, authorization: Option.none() }
  const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
  const target = new URL(url)
  target.username = ""
  target.password = ""
  return { target, authorization: Option.some(`Basic ${Buffer.from(user).toString("base64")}`) }
}

const parseUrl = (raw: string): URL | InvalidRequest => {
  const invalid = new InvalidRequest({ path: "webhook.url", detail: "must be an http: or https: URL" })
  if (!URL.canParse(raw)) return invalid
  const url = new URL(raw)
  return url.protocol === "http:" || url.protocol === "https:" ? url : invalid
}

const retryableStatus = (status: number): boolean => status === 429 || status >= 500

/**
 * Starts the sender in the layer's scope: it subscribes to {@link BudgetEvents} and
 * delivers each event it sees.
 *
 * @example
 * import { Layer, Redacted } from "effect"
 * import { BudgetWebhook, TeamBudget } from "teambudget"
 *
 * const live = BudgetWebhook.layer({
 *   url: "https://alerts.example.com/teambudget",
 *   secret: Redacted.make("whsec_…")
 * }).pipe(Layer.provideMerge(TeamBudget.layerMemory()))
 * @since 0.1.0
 */
export const layer = (options: WebhookOptions): Layer.Layer<never, InvalidRequest, BudgetEvents> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const url = parseUrl(options.url)
      if (url instanceof InvalidRequest) return yield* url
      const target = describeTarget(url)
      const { target: endpoint, authorization } = splitCredentials(url)
      const baseHeaders: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "teambudget",
        ...(Option.isSome(authorization) ? { authorization: authorization.value } : {})
      }
      const events = yield* BudgetEvents
      const maxAttempts = Math.max(1, options.maxAttempts ?? 8)
      const timeout = Duration.decode(options.timeout ?? "10 seconds")
      const schedule = Schedule.exponential(options.backoff ?? "1 second").pipe(
        Schedule.jittered,
        Schedule.union(Schedule.spaced(options.maxBackoff ?? "1 minute")),
        Schedule.intersect(Schedule.recurs(maxAttempts - 1))
      )

      const attempt = (event: BudgetEvent.BudgetEvent, body: string) =>
        Effect.gen(function* () {
          const timestamp = String(Math.floor((yield* Clock.currentTimeMillis) / 1000))
          const post = Effect.tryPromise({
            try: async (signal) => {
              const response = await fetch(endpoint, {
                method: "POST",
                signal,
                body,
                headers: {
                  ...baseHeaders,
                  "x-teambudget-event-id": event.eventId,
                  "x-teambudget-timestamp": timestamp,
                  "x-teambudget-signature": sign(options.secret, timestamp, body)
                }
              })
              // Read the reply to the end so the connection can be reused.
              await response.arrayBuffer().catch(() => undefined)
              return response.status
            },
            catch: () => new WebhookFailed({ reason: "connection failed", retryable: true })
          })
          const status = yield* post.pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new WebhookFailed({ reason: "timed out", retryable: true })
            })
          )
          if (status >= 200 && status < 300) return
          return yield* new WebhookFailed({ reason: `HTTP ${status}`, retryable: retryableStatus(status) })
        })

      const deliver = (event: BudgetEvent.BudgetEvent) =>
        attempt(event, BudgetEvent.toJson(event)).pipe(
          Effect.retry({ schedule, while: (error) => error.retryable }),
          Effect.zipRight(Metric.increment(delivered)),
          Effect.catchAll((error) =>
            Effect.zipRight(
              Metric.increment(failed),
              Effect.logWarning(
                `Budget webhook: event ${event.eventId} (${event._tag}) not delivered to ${target}: ${error.reason}`
              )
            )
          )
        )

      const queue = yield* Effect.acquireRelease(
        Queue.dropping<BudgetEvent.BudgetEvent>(options.queueSize ?? 1000),
        Queue.shutdown
      )
      const subscription = yield* events.subscribe
      yield* Queue.take(subscription).pipe(
        Effect.flatMap((event) => Queue.offer(queue, event)),
        Effect.flatMap((accepted) => (accepted ? Effect.void : Metric.increment(dropped))),
        Effect.forever,
        Effect.forkScoped
      )
      const concurrency = Math.max(1, options.concurrency ?? 4)
      for (let i = 0; i < concurrency; i++) {
        yield* Queue.take(queue).pipe(Effect.flatMap(deliver), Effect.forever, Effect.forkScoped)
      }
    })
  )

/**
 * The webhook from `TEAMBUDGET_WEBHOOK_URL` and `TEAMBUDGET_WEBHOOK_SECRET` (read as a
 * secret); no webhook when the URL is not set, a `ConfigError` when the secret is not.
 *
 * @example
 * import { Layer } from "effect"
 * import { BudgetWebhook, TeamBudget } from "teambudget"
 *
 * const live = BudgetWebhook.layerConfig().pipe(Layer.provideMerge(TeamBudget.layerMemory()))
 * @since 0.1.0
 */
export const layerConfig = (
  options: Omit<WebhookOptions, "url" | "secret"> = {}
): Layer.Layer<never, InvalidRequest | ConfigError.ConfigError, BudgetEvents> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const url = yield* Config.option(Config.string("TEAMBUDGET_WEBHOOK_URL"))
      if (Option.isNone(url)) return Layer.empty
      const secret = yield* Config.redacted("TEAMBUDGET_WEBHOOK_SECRET")
      return layer({ ...options, url: url.value, secret })
    })
  )
