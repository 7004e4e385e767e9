/**
 * Budget events on the memory store, time driven by TestClock: each crossing is
 * published once, again in the next window, and again after the cap changes; window
 * resets of idle scopes and keys about to expire come from the scan.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { BudgetEvent, BudgetEvents, KeyAuth, KeyRepo, TeamBudget, TeamRepo, Token } from "../src/index.js"
import { createTeamBudget } from "../src/promise.js"
import { budgetLimits, describeEvent, received, spend, subscribedTeam } from "./support/events.js"
import { makeKey, makeTeam, teamId, usd } from "./support/fixtures.js"
import { testPricing } from "./support/runtime.js"

const live = (options: TeamBudget.TeamBudgetOptions = {}) =>
  TeamBudget.layerMemory({ pricing: testPricing, ...options })

// The scan also runs on its own; hourly keeps TestClock jumps of days cheap.
const withEvents = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, live({ events: { scanEvery: "1 hour" } }))

// Every event, not only the team's: a scope without a budget (the key, the global scope) must raise none.
const teamEvents = (events: ReadonlyArray<BudgetEvent.BudgetEvent>) => events.map(describeEvent)

describe("BudgetEvents", () => {
  it.scoped("50 / 80 / 100 % and the soft budget fire once each, again in the next window", () =>
    Effect.provide(
      Effect.gen(function* () {
        const { events, queue, token } = yield* subscribedTeam(
          "eng",
          budgetLimits({ maxBudget: 10, softBudget: 3, budgetDuration: "1d" })
        )
        const step = (dollars: number) => Effect.zipRight(spend(token, dollars), received(queue))

        expect(teamEvents(yield* step(2))).toEqual([])
        expect(teamEvents(yield* step(2))).toEqual(["Soft team:eng"])
        expect(teamEvents(yield* step(1.5))).toEqual(["Threshold 50 team:eng"])
        expect(teamEvents(yield* step(0.5))).toEqual([])
        expect(teamEvents(yield* step(3))).toEqual(["Threshold 80 team:eng"])
        const full = yield* step(1)
        expect(teamEvents(full)).toEqual(["Threshold 100 team:eng"])
        const hundred = full.find((event) => event._tag === "BudgetThresholdReached")
        expect(hundred?._tag === "BudgetThresholdReached" && [hundred.spend, hundred.maxBudget]).toEqual([
          usd(10),
          usd(10)
        ])
        // Asking again finds nothing new.
        yield* events.check({ kind: "team", id: teamId("eng") })
        expect(yield* received(queue)).toEqual([])

        // The window ends while the team is idle: the scan reports the reset.
        yield* TestClock.adjust("1 day")
        yield* events.scan
        const reset = yield* received(queue)
        expect(teamEvents(reset)).toEqual(["Reset team:eng"])
        expect(yield* received(queue)).toEqual([])

        expect(teamEvents(yield* step(3))).toEqual(["Soft team:eng"])
        expect(teamEvents(yield* step(2))).toEqual(["Threshold 50 team:eng"])
        expect(teamEvents(yield* step(1))).toEqual([])

        // The next window ends too; this time a settle finds it first.
        yield* TestClock.adjust("1 day")
        expect(teamEvents(yield* step(1))).toEqual(["Reset team:eng"])
      }),
      // Scans run only when the test asks, so each reset above is found where the comment says.
      live({ events: { scanEvery: "365 days" } })
    )
  )

  it.scoped("event ids are deterministic and the JSON form round-trips", () =>
    withEvents(
      Effect.gen(function* () {
        const events = yield* BudgetEvents.BudgetEvents
        const queue = yield* events.subscribe
        yield* makeTeam("eng", budgetLimits({ maxBudget: 10 }))
        const token = yield* makeKey({ team: "eng", alias: "ci" })
        const [event] = yield* Effect.zipRight(spend(token, 6), received(queue))
        if (event === undefined) return expect.unreachable("no event")
        const json: unknown = JSON.parse(BudgetEvent.toJson(event))
        expect(json).toMatchObject({
          type: "BudgetThresholdReached",
          scope: { kind: "team", id: "eng" },
          percent: 50,
          spend: 6,
          max_budget: 10,
          window_ends_at: null
        })
        expect(event.eventId).toMatch(/^[0-9a-f]{32}$/)
      })
    )
  )

  it.scoped("raising max_budget re-arms the thresholds; a key is named by its token_id", () =>
    withEvents(
      Effect.gen(function* () {
        const events = yield* BudgetEvents.BudgetEvents
        const queue = yield* events.subscribe
        const keys = yield* KeyRepo
        const token = yield* makeKey({ limits: budgetLimits({ maxBudget: 4 }) })
        const key = Option.getOrThrow(yield* keys.find(Token.hashToken(token)))
        const first = yield* Effect.zipRight(spend(token, 2), received(queue))
        expect(first.map(describeEvent)).toEqual([`Threshold 50 key:${key.keyId}`])
        expect(first.map(BudgetEvent.toJson).join()).not.toContain(key.hash)

        yield* keys.update(key.hash, { limits: { maxBudget: Option.some(usd(40)) } })
        expect(yield* Effect.zipRight(spend(token, 1), received(queue))).toEqual([])
        const again = yield* Effect.zipRight(spend(token, 17), received(queue))
        expect(again.map(describeEvent)).toEqual([`Threshold 50 key:${key.keyId}`])
      })
    )
  )

  it.scoped("a lower max_budget is seen at the next settle", () =>
    withEvents(
      Effect.gen(function* () {
        const { queue, token } = yield* subscribedTeam("eng", budgetLimits({ maxBudget: 100 }))
        expect(teamEvents(yield* Effect.zipRight(spend(token, 10), received(queue)))).toEqual([])
        yield* Effect.flatMap(TeamRepo, (teams) =>
          teams.update(teamId("eng"), { limits: { maxBudget: Option.some(usd(12)) } })
        )
        // As the management API does after a write: cached principals are stale.
        yield* Effect.flatMap(KeyAuth.KeyAuth, (auth) => auth.invalidateAll)
        expect(teamEvents(yield* Effect.zipRight(spend(token, 0.01), received(queue)))).toEqual([
          "Threshold 50 team:eng",
          "Threshold 80 team:eng"
        ])
      })
    )
  )

  it.scoped("concurrent settles crossing 80 % publish it exactly once", () =>
    withEvents(
      Effect.gen(function* () {
        const { queue, token } = yield* subscribedTeam("eng", budgetLimits({ maxBudget: 100 }))
        yield* Effect.all(
          Array.from({ length: 100 }, () => spend(token, 1)),
          { concurrency: "unbounded" }
        )
        expect(teamEvents(yield* received(queue))).toEqual([
          "Threshold 50 team:eng",
          "Threshold 80 team:eng",
          "Threshold 100 team:eng"
        ])
      })
    )
  )

  it.scoped("keys expiring within the configured time: one event per key across scans", () =>
    Effect.gen(function* () {
      const events = yield* BudgetEvents.BudgetEvents
      const queue = yield* events.subscribe
      const day = 86_400_000
      yield* makeKey({ alias: "soon", expiresInMillis: 2 * day })
      yield* makeKey({ alias: "later", expiresInMillis: 5 * day })
      yield* makeKey({ alias: "never" })
      const aliases = (list: ReadonlyArray<BudgetEvent.BudgetEvent>) =>
        list.map((event) => (event._tag === "KeyExpiring" ? Option.getOrNull(event.keyAlias) : event._tag))
      yield* events.scan
      yield* events.scan
      expect(aliases(yield* received(queue))).toEqual(["soon"])
      yield* TestClock.adjust("2 days")
      yield* events.scan
      expect(aliases(yield* received(queue))).toEqual(["later"])
      yield* events.scan
      expect(yield* received(queue)).toEqual([])
    }).pipe(Effect.provide(live({ events: { keyExpiringWithin: "3 days", scanEvery: "1 hour" } })))
  )

  it.scoped("no events at all when turned off", () =>
    Effect.gen(function* () {
      const events = yield* BudgetEvents.BudgetEvents
      const queue = yield* events.subscribe
      yield* makeTeam("eng", budgetLimits({ maxBudget: 1 }))
      const token = yield* makeKey({ team: "eng", expiresInMillis: 1000 })
      yield* spend(token, 1)
      yield* events.scan
      expect(yield* received(queue)).toEqual([])
    }).pipe(Effect.provide(live({ events: { enabled: false } })))
  )
})

describe("onBudgetEvent (Promise facade)", () => {
  it("calls back for each event; a callback that throws breaks nothing", async () => {
    const budget = await createTeamBudget({ pricing: testPricing })
    try {
      const seen: Array<string> = []
      let failures = 0
      const done = new Promise<void>((resolve) => {
        budget.onBudgetEvent((event) => {
          if (event._tag !== "BudgetThresholdReached") return
          seen.push(`${event.percent}`)
          if (event.percent === 100) resolve()
          if (event.percent === 50) {
            failures++
            throw new Error("receiver bug")
          }
        })
      })
      const stopped: Array<string> = []
      const stop = budget.onBudgetEvent((event) => {
        stopped.push(event._tag)
      })
      stop()
      await budget.admin.teamNew({ team_id: "eng", team_alias: "eng", max_budget: 1 })
      const { key } = await budget.admin.keyGenerate({ team_id: "eng" })
      for (const dollars of [0.6, 0.3, 0.1]) {
        const tokens = Math.round(dollars * 100)
        const admission = await budget.authorize({
          apiKey: key,
          model: "big",
          promptTokens: tokens,
          maxOutputTokens: 0
        })
        await budget.settle(admission, { promptTokens: tokens, completionTokens: 0 })
      }
      await done
      expect(seen).toEqual(["50", "80", "100"])
      expect(failures).toBe(1)
      expect(stopped).toEqual([])
    } finally {
      await budget.close()
    }
  })
})
