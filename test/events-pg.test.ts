/**
 * Budget events across two instances on one PostgreSQL database (two pools, two
 * TeamBudget layers): each crossing and each expiring key is published exactly once in
 * total, whichever instance sees it first.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, type Context, Effect, Layer, Option, Queue, Redacted, TestClock } from "effect"
import { PgClient } from "@effect/sql-pg"
import {
  type BudgetEvent,
  BudgetEvents,
  BudgetPolicy,
  Invalidation,
  SqlStore,
  TeamBudget
} from "../src/index.js"
import { budgetLimits, describeEvent, spend } from "./support/events.js"
import { makeKey, makeTeam, teamId } from "./support/fixtures.js"
import { describePg, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"
import { testPricing } from "./support/runtime.js"

type Instance = Context.Context<TeamBudget.Services>

describePg("BudgetEvents on PostgreSQL, two instances", () => {
  const database = useDatabase()

  /** Two instances on one fresh schema, each with its own pool and its own subscription. */
  const twoInstances = Effect.gen(function* () {
    const schema = yield* schemaIn(database.name)
    const instance = () =>
      Layer.build(
        TeamBudget.layer(
          Layer.merge(
            SqlStore.layer().pipe(
              Layer.provide(
                PgClient.layer({ url: Redacted.make(pgUrl(database.name, schema)), maxConnections: 4 })
              )
            ),
            Invalidation.layerLocal
          ),
          { pricing: testPricing }
        )
      )
    const a = yield* instance()
    const b = yield* instance()
    const subscribe = (ctx: Instance) =>
      Effect.flatMap(BudgetEvents.BudgetEvents, (events) => events.subscribe).pipe(Effect.provide(ctx))
    return { a, b, queues: [yield* subscribe(a), yield* subscribe(b)] as const }
  })

  /** Every event both instances published so far, once their queued checks are done. */
  const collect = (
    instances: ReadonlyArray<Instance>,
    queues: ReadonlyArray<Queue.Dequeue<BudgetEvent.BudgetEvent>>
  ): Effect.Effect<ReadonlyArray<string>> =>
    Effect.gen(function* () {
      for (const ctx of instances) {
        yield* Effect.flatMap(BudgetEvents.BudgetEvents, (events) => events.idle).pipe(Effect.provide(ctx))
      }
      const out: Array<string> = []
      for (const queue of queues)
        out.push(...Chunk.toReadonlyArray(yield* Queue.takeAll(queue)).map(describeEvent))
      return out.sort()
    })

  const on = <A, E>(ctx: Instance, effect: Effect.Effect<A, E, TeamBudget.Services>) =>
    Effect.provide(effect, ctx)

  const scanOn = (ctx: Instance) =>
    on(
      ctx,
      Effect.flatMap(BudgetEvents.BudgetEvents, (events) => events.scan)
    )

  it.scopedLive(
    "concurrent settles crossing 80 % on both instances publish it exactly once in total",
    () =>
      Effect.gen(function* () {
        const { a, b, queues } = yield* twoInstances
        const teams = ["t1", "t2", "t3", "t4", "t5"]
        const tokens: Array<string> = []
        for (const team of teams) {
          yield* on(a, makeTeam(team, budgetLimits({ maxBudget: 10 })))
          tokens.push(yield* on(a, makeKey({ team })))
        }
        // $7.5 of $10 on each team: 50 % reached, 80 % not yet.
        yield* Effect.forEach(tokens, (token) => on(a, spend(token, 7.5)), { concurrency: "unbounded" })
        expect(yield* collect([a, b], queues)).toEqual(teams.map((team) => `Threshold 50 team:${team}`))

        // Each team gets $0.5 through a and $0.5 through b at once: both instances see 80 %.
        const admit = (ctx: Instance, token: string) =>
          on(
            ctx,
            Effect.flatMap(BudgetPolicy.BudgetPolicy, (policy) =>
              policy.authorize({ apiKey: token, model: "big", promptTokens: 50, maxOutputTokens: 0 })
            )
          )
        const settle = (ctx: Instance, admission: BudgetPolicy.Admission) =>
          on(
            ctx,
            Effect.flatMap(BudgetPolicy.BudgetPolicy, (policy) =>
              policy.settle(admission, { promptTokens: 50, completionTokens: 0 })
            )
          )
        const pairs = yield* Effect.forEach(tokens, (token) => Effect.all([admit(a, token), admit(b, token)]))
        yield* Effect.forEach(
          pairs,
          ([onA, onB]) => Effect.all([settle(a, onA), settle(b, onB)], { concurrency: 2 }),
          {
            concurrency: "unbounded"
          }
        )
        expect(yield* collect([a, b], queues)).toEqual(teams.map((team) => `Threshold 80 team:${team}`))

        // Both instances check every team again: nothing new.
        for (const ctx of [a, b]) {
          yield* on(
            ctx,
            Effect.flatMap(BudgetEvents.BudgetEvents, (events) =>
              Effect.forEach(teams, (team) => events.check({ kind: "team", id: teamId(team) }))
            )
          )
        }
        expect(yield* collect([a, b], queues)).toEqual([])
      }),
    60_000
  )

  // TestClock: time moves only when the test says so, so "no reading yet" is not a race.
  it.scoped(
    "spend that crosses only when both instances' shares add up is found by the next scan",
    () =>
      Effect.gen(function* () {
        const { a, b, queues } = yield* twoInstances
        yield* on(a, makeTeam("pool", budgetLimits({ maxBudget: 10 })))
        const token = yield* on(a, makeKey({ team: "pool" }))
        // Each instance reads the team once ($1, then $2 in total)...
        yield* on(a, spend(token, 1))
        yield* on(b, spend(token, 1))
        // ...then adds $1.6 to what it read: $2.6 and $3.6, each short of 50 %, $5.2 in truth.
        yield* on(a, spend(token, 1.6))
        yield* on(b, spend(token, 1.6))
        expect(yield* collect([a, b], queues)).toEqual([])
        yield* TestClock.adjust("1 second")
        yield* scanOn(a)
        expect(yield* collect([a, b], queues)).toEqual(["Threshold 50 team:pool"])
      }),
    60_000
  )

  it.scopedLive(
    "a key about to expire is reported once across two scans on two instances",
    () =>
      Effect.gen(function* () {
        const { a, b, queues } = yield* twoInstances
        const hour = 3_600_000
        yield* on(a, makeKey({ alias: "soon", expiresInMillis: hour }))
        yield* on(a, makeKey({ alias: "next-month", expiresInMillis: 30 * 24 * hour }))
        yield* Effect.all([scanOn(a), scanOn(b)], { concurrency: 2 })
        yield* Effect.all([scanOn(a), scanOn(b)], { concurrency: 2 })
        const events: Array<BudgetEvent.BudgetEvent> = []
        for (const queue of queues) events.push(...Chunk.toReadonlyArray(yield* Queue.takeAll(queue)))
        expect(
          events.map((event) =>
            event._tag === "KeyExpiring" ? Option.getOrNull(event.keyAlias) : event._tag
          )
        ).toEqual(["soon"])
      }),
    60_000
  )
})
