/**
 * The budget event webhook against a real receiver on loopback: each crossing arrives
 * exactly once with a valid signature although its first attempts fail (a 500, then a
 * dropped connection); a stalled receiver never holds up a request; a receiver that
 * keeps failing is given up on with a log line that shows no secret and no credentials.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, Metric, Redacted, Schema } from "effect"
import { BudgetEvent, BudgetWebhook, TeamBudget } from "../src/index.js"
import { budgetLimits, received, spend, subscribedTeam } from "./support/events.js"
import { testPricing } from "./support/runtime.js"
import { type Behaviour, startReceiver } from "./support/webhookReceiver.js"

const secret = Redacted.make("whsec_test_5b1f")

const receiver = (behave: (eventId: string, attempt: number) => Behaviour) =>
  Effect.acquireRelease(
    Effect.promise(() => startReceiver(behave)),
    (server) => Effect.promise(() => server.close())
  )

/** A memory deployment with a webhook; returns its services. */
const deployment = (webhook: Omit<BudgetWebhook.WebhookOptions, "secret">) =>
  Layer.build(
    TeamBudget.layerMemory({
      pricing: testPricing,
      webhook: { secret, backoff: "10 millis", maxBackoff: "50 millis", ...webhook }
    })
  )

/** A team with a $10 budget and a key on it, and a subscription to the events. */
const teamWithKey = subscribedTeam("eng", budgetLimits({ maxBudget: 10 }))

describe("BudgetWebhook", () => {
  it.scopedLive("each crossing arrives exactly once, signed, after a 500 and a dropped connection", () =>
    Effect.gen(function* () {
      const server = yield* receiver((_, attempt) =>
        attempt === 1 ? { _tag: "status", status: 500 } : attempt === 2 ? { _tag: "drop" } : { _tag: "ok" }
      )
      const ctx = yield* deployment({ url: server.url })
      const published = yield* Effect.gen(function* () {
        const { queue, token } = yield* teamWithKey
        yield* spend(token, 6)
        yield* spend(token, 2.5)
        yield* spend(token, 1.5)
        return yield* received(queue)
      }).pipe(Effect.provide(ctx))
      expect(published.map((event) => event._tag === "BudgetThresholdReached" && event.percent)).toEqual([
        50, 80, 100
      ])

      const delivered = yield* Effect.promise(() => server.delivered(3))
      const ids = published.map((event) => event.eventId)
      expect(delivered.map((attempt) => attempt.eventId).sort()).toEqual([...ids].sort())
      for (const id of ids) {
        expect(server.attempts.filter((a) => a.eventId === id).map((a) => a.outcome._tag)).toEqual([
          "status",
          "drop",
          "ok"
        ])
      }
      for (const attempt of delivered) {
        expect(
          BudgetWebhook.verifySignature(secret, attempt.timestamp, attempt.body, attempt.signature)
        ).toBe(true)
        expect(
          BudgetWebhook.verifySignature("other", attempt.timestamp, attempt.body, attempt.signature)
        ).toBe(false)
        expect(
          BudgetWebhook.verifySignature(
            secret,
            attempt.timestamp,
            attempt.body.replace("10", "99"),
            attempt.signature
          )
        ).toBe(false)
        const event = Schema.decodeUnknownSync(BudgetEvent.BudgetEvent)(JSON.parse(attempt.body))
        expect(event.eventId).toBe(attempt.eventId)
        expect(BudgetEvent.toJson(event)).toBe(attempt.body)
        expect(attempt.path).toBe("/hooks/budget")
      }
    })
  )

  it.scopedLive("a stalled receiver never holds up a request; a full queue drops and counts", () =>
    Effect.gen(function* () {
      const server = yield* receiver(() => ({ _tag: "stall" }))
      const ctx = yield* deployment({ url: server.url, queueSize: 1, concurrency: 1 })
      const droppedBefore = (yield* Metric.value(BudgetWebhook.dropped)).count
      yield* Effect.gen(function* () {
        const { queue, token } = yield* teamWithKey
        yield* spend(token, 6)
        yield* Effect.promise(() => server.arrived(1))
        // The receiver now holds the 50 % delivery open; requests carry on regardless.
        yield* spend(token, 2.5)
        yield* spend(token, 1.5)
        const later = yield* received(queue)
        expect(later.length).toBe(3)
        // 80 % waits in the queue of one; 100 % finds it full.
        while ((yield* Metric.value(BudgetWebhook.dropped)).count === droppedBefore)
          yield* Effect.sleep("5 millis")
        expect((yield* Metric.value(BudgetWebhook.dropped)).count).toBe(droppedBefore + 1)
        expect(server.attempts.length).toBe(1)
      }).pipe(Effect.provide(ctx))
      server.release()
    })
  )

  it.scopedLive("gives up after maxAttempts with a log line free of secrets and credentials", () => {
    const lines: Array<string> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
      })
    )
    return Effect.gen(function* () {
      const server = yield* receiver(() => ({ _tag: "status", status: 503 }))
      const url = server.url.replace("http://", "http://hook-user:hook-pass@") + "?token=q-secret"
      const ctx = yield* deployment({ url, maxAttempts: 3 })
      const [event] = yield* Effect.gen(function* () {
        const { queue, token } = yield* teamWithKey
        yield* spend(token, 6)
        return yield* received(queue)
      }).pipe(Effect.provide(ctx))
      if (event === undefined) return expect.unreachable("no event")
      while (!lines.some((line) => line.includes("not delivered"))) yield* Effect.sleep("5 millis")
      expect(server.attempts.map((a) => a.outcome._tag)).toEqual(["status", "status", "status"])
      const [first] = server.attempts
      expect(first?.authorization).toBe(`Basic ${Buffer.from("hook-user:hook-pass").toString("base64")}`)
      expect(first?.path).toBe("/hooks/budget?token=q-secret")
      const line = lines.find((l) => l.includes("not delivered")) ?? ""
      expect(line).toContain(event.eventId)
      expect(line).toContain("HTTP 503")
      for (const hidden of ["hook-pass", "hook-user", "q-secret", Redacted.value(secret)]) {
        expect(lines.join("\n")).not.toContain(hidden)
      }
    }).pipe(Effect.provide(capture))
  })

  it("an invalid URL fails the layer with InvalidRequest", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Layer.build(TeamBudget.layerMemory({ webhook: { url: "ftp://example.com/hook", secret } }))
      )
    )
    expect(exit._tag).toBe("Failure")
    expect(JSON.stringify(exit)).toContain("webhook.url")
  })

  it("layerConfig: no URL, no webhook; a URL without a secret is a config error", async () => {
    const build = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.runPromiseExit(
        Effect.scoped(
          Layer.build(BudgetWebhook.layerConfig().pipe(Layer.provideMerge(TeamBudget.layerMemory()))).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
          )
        )
      )
    expect((await build([]))._tag).toBe("Success")
    expect((await build([["TEAMBUDGET_WEBHOOK_URL", "http://127.0.0.1:1/hook"]]))._tag).toBe("Failure")
    expect(
      (
        await build([
          ["TEAMBUDGET_WEBHOOK_URL", "http://127.0.0.1:1/hook"],
          ["TEAMBUDGET_WEBHOOK_SECRET", "s"]
        ])
      )._tag
    ).toBe("Success")
  })
})
