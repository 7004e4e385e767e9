/**
 * The stores against each other: random sequences of holds, settlements, releases and
 * time passing, on random caps and windows, run on the memory store and on SQLite (and
 * PostgreSQL when it is reachable). Every step must come out the same on each: admitted
 * or refused (naming the same scope), the same headroom, the same spend everywhere after.
 * The memory store is the reference: its ledger is a few maps in one process.
 */
import { Cause, DateTime, Effect, Exit, Layer, Option, Redacted, TestClock, TestContext } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type Ledger,
  type Limits,
  MemoryStore,
  Money,
  type Scope,
  SpendLedger,
  SqlStore,
  type StoreServices
} from "../src/index.js"
import { endUserId, holdRequest, logDraft, makeWorld, type WorldLimits } from "./conformance/fixtures.js"
import { limits } from "./support/fixtures.js"
import { toText } from "./support/sqlDump.js"
import { describePg, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"

type Step =
  | { readonly _tag: "hold"; readonly scopes: number; readonly cents: number; readonly strict: boolean }
  | { readonly _tag: "settle"; readonly pick: number; readonly cents: number }
  | { readonly _tag: "release"; readonly pick: number }
  | { readonly _tag: "wait"; readonly minutes: number }

interface Case {
  readonly world: Caps
  readonly steps: ReadonlyArray<Step>
}

/** A cap as plain data, so a counterexample prints as it reads. */
interface Cap {
  readonly maxBudget: number
  readonly budgetDuration?: string
}

const capArb: fc.Arbitrary<Cap | undefined> = fc.option(
  fc.oneof(
    fc.record({ maxBudget: fc.constantFrom(0, 0.05, 0.2, 1, 3) }),
    fc.record({ maxBudget: fc.constantFrom(0, 0.05, 0.2, 1, 3), budgetDuration: fc.constantFrom("1h", "1d") })
  ),
  { nil: undefined }
)

const worldArb = fc.record({ key: capArb, user: capArb, member: capArb, team: capArb, organization: capArb })

type Caps = { readonly [K in keyof WorldLimits]-?: Cap | undefined }

const worldLimits = (caps: Caps): WorldLimits => {
  const out: { -readonly [K in keyof WorldLimits]: Limits.Limits } = {}
  for (const name of ["key", "user", "member", "team", "organization"] as const) {
    const cap = caps[name]
    if (cap !== undefined) out[name] = limits(cap)
  }
  return out
}

/** Amounts in cents, often ones that add up to a cap exactly. */
const centsArb = fc.oneof(fc.constantFrom(0, 5, 10, 15, 20, 50, 100, 300), fc.integer({ min: 0, max: 150 }))

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("hold" as const),
      scopes: fc.integer({ min: 1, max: 127 }),
      cents: centsArb,
      strict: fc.boolean()
    })
  },
  {
    weight: 3,
    arbitrary: fc.record({
      _tag: fc.constant("settle" as const),
      pick: fc.nat(),
      cents: centsArb
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("release" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("wait" as const), minutes: fc.constantFrom(1, 16, 61, 1441) })
  }
)

const caseArb: fc.Arbitrary<Case> = fc.record({
  world: worldArb,
  steps: fc.array(stepArb, { minLength: 1, maxLength: 25 })
})

const cents = (n: number): Money.Money => Money.make(BigInt(n) * 10_000_000n)

/** A failure as the step saw it: the typed error and its fields, or the defect. */
const failureText = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => Cause.pretty(cause),
    onSome: (error) => toText(error)
  })

/** What each step came to, and every scope's spend at the end, in plain text. */
const play = (test: Case): Effect.Effect<ReadonlyArray<string>, unknown, StoreServices> =>
  Effect.gen(function* () {
    yield* TestClock.setTime(Date.UTC(2026, 0, 1))
    const world = yield* makeWorld(worldLimits(test.world))
    const ledger = yield* SpendLedger
    const everyScope: ReadonlyArray<Scope.ScopeRef> = [
      ...world.scopes,
      { kind: "end_user", id: endUserId("first-seen") }
    ]
    const open: Array<Ledger.Hold> = []
    const seen: Array<string> = []
    for (const step of test.steps) {
      switch (step._tag) {
        case "hold": {
          const scopes = everyScope.filter((_, i) => (step.scopes & (1 << i)) !== 0)
          const exit = yield* Effect.exit(
            ledger.hold(holdRequest(scopes, cents(step.cents), step.strict ? "strict" : "optimistic"))
          )
          if (Exit.isSuccess(exit)) {
            open.push(exit.value)
            const tightest = Option.map(
              exit.value.tightest,
              (h) => `${h.scope.kind} ${h.remaining} of ${h.maxBudget}`
            )
            seen.push(`hold ${exit.value.amount} tightest ${Option.getOrElse(tightest, () => "none")}`)
          } else seen.push(`hold failed ${failureText(exit.cause)}`)
          break
        }
        case "settle": {
          const held = open.splice(step.pick % Math.max(open.length, 1), 1)[0]
          if (held === undefined) break
          const now = yield* TestClock.currentTimeMillis
          const exit = yield* Effect.exit(
            ledger.settle(held, cents(step.cents), logDraft(world, held, DateTime.unsafeMake(now)))
          )
          seen.push(
            Exit.isSuccess(exit)
              ? `settle ${exit.value.cost} late ${exit.value.late} tightest ${Option.getOrElse(
                  Option.map(exit.value.tightest, (h) => `${h.scope.kind} ${h.remaining}`),
                  () => "none"
                )}`
              : `settle failed ${failureText(exit.cause)}`
          )
          break
        }
        case "release": {
          const held = open.splice(step.pick % Math.max(open.length, 1), 1)[0]
          if (held === undefined) break
          const exit = yield* Effect.exit(ledger.release(held))
          seen.push(Exit.isSuccess(exit) ? "released" : `release failed ${failureText(exit.cause)}`)
          break
        }
        case "wait":
          yield* TestClock.adjust(`${step.minutes} minutes`)
          seen.push(`waited ${step.minutes} min`)
      }
    }
    for (const scope of everyScope) {
      const spend = yield* ledger.spendOf(scope)
      seen.push(`${scope.kind}: total ${spend.total} current ${spend.current} held ${spend.held}`)
    }
    return seen
  })

const run = (test: Case, store: Layer.Layer<StoreServices, unknown>) =>
  Effect.runPromise(
    play(test).pipe(
      Effect.provide(Layer.fresh(store)),
      Effect.scoped,
      Effect.provide(TestContext.TestContext)
    )
  )

/** The property: `store` (a new one for each case) comes to what the memory store comes to. */
const sameAsMemory = (store: () => Layer.Layer<StoreServices, unknown>, numRuns: number) =>
  fc.assert(
    fc.asyncProperty(caseArb, async (test) => {
      const reference = await run(test, MemoryStore.layer())
      expect(await run(test, store())).toEqual(reference)
    }),
    { numRuns, endOnFailure: true }
  )

describe("the stores against each other", () => {
  it(
    "SQLite decides every step as the memory store does",
    () => sameAsMemory(() => SqlStore.layerSqlite({ filename: ":memory:" }), 60),
    120_000
  )
})

describePg("the stores against each other, on PostgreSQL", () => {
  const database = useDatabase()
  it(
    "PostgreSQL decides every step as the memory store does",
    () =>
      sameAsMemory(
        () =>
          // A schema of its own for each case, dropped with the store.
          Layer.unwrapScoped(
            Effect.map(schemaIn(database.name), (schema) =>
              SqlStore.layer().pipe(
                Layer.provide(SqlStore.pgClient({ url: Redacted.make(pgUrl(database.name, schema)) }))
              )
            )
          ),
        15
      ),
    120_000
  )
})
