/**
 * The one-call ledger batch on PostgreSQL (`tb_ledger_batch`): hundreds of concurrent
 * hold+settle over many teams and two store instances keep the global spend, each
 * team's spend and the spend log exact; a capped global budget admits exactly what
 * fits; steps the call cannot decide (a window that must reset first) are handed back
 * and decided alone, exactly.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { expect, it } from "@effect/vitest"
import { type Context, Effect, Either, Layer, Metric, Option, Redacted, Schema } from "effect"
import {
  BudgetRepo,
  Ids,
  Money,
  type Scope,
  SpendLedger,
  SpendLogRepo,
  SqlStore,
  type StoreServices,
  Token
} from "../src/index.js"
import type { Hold, SpendLogDraft } from "../src/store/SpendLedger.js"
import { groupCommitSteps } from "../src/store/sql/SqlLedger.js"
import { holdRequest } from "./conformance/fixtures.js"
import { limits, teamId, usd } from "./support/fixtures.js"
import { describePg, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"
import { makeTeamOf } from "./support/sqlScenarios.js"

const batchedSteps = Effect.map(Metric.value(groupCommitSteps), (state) => state.count)

const global: Scope.ScopeRef = { kind: "global" }
const teamScope = (i: number): Scope.ScopeRef => ({ kind: "team", id: teamId(`team-${i}`) })

const token = Token.generateToken()

const draft = (hold: Hold): SpendLogDraft => ({
  requestId: Schema.decodeSync(Ids.RequestId)(hold.holdId),
  keyId: Schema.decodeSync(Ids.KeyId)("key-batch"),
  keyHash: Token.hashToken(token),
  keyLabel: "batch",
  userId: Option.none(),
  teamId: Option.none(),
  organizationId: Option.none(),
  endUser: Option.none(),
  model: "gpt-test",
  promptTokens: 1,
  completionTokens: 1,
  startedAt: hold.expiresAt,
  status: "success"
})

type Instance = Context.Context<StoreServices | SqlClient.SqlClient>

const on = <A, E>(
  instances: ReadonlyArray<Instance>,
  i: number,
  effect: Effect.Effect<A, E, SpendLedger>
) => {
  const instance = instances[i % instances.length]
  return instance === undefined ? Effect.dieMessage("no instance") : Effect.provide(effect, instance)
}

/** A strict hold on `scopes`, settled at `cost` when held; the refusal otherwise. */
const holdAndSettle = (scopes: ReadonlyArray<Scope.ScopeRef>, amount: Money.Money, cost: Money.Money) =>
  Effect.flatMap(SpendLedger, (ledger) =>
    ledger.hold(holdRequest(scopes, amount)).pipe(
      Effect.flatMap((held) => ledger.settle(held, cost, draft(held))),
      Effect.either
    )
  )

describePg("the ledger batch as one call on PostgreSQL", () => {
  const database = useDatabase()

  const storeOn = (url: string) =>
    Layer.build(
      SqlStore.layer().pipe(
        Layer.provideMerge(SqlStore.pgClient({ url: Redacted.make(url), maxConnections: 4 }))
      )
    )

  it.scoped("400 concurrent hold+settle over 16 teams and two instances: global spend exact", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      const instances = [yield* storeOn(url), yield* storeOn(url)]
      const before = yield* batchedSteps
      const results = yield* Effect.all(
        Array.from({ length: 400 }, (_, i) =>
          on(instances, i, holdAndSettle([teamScope(i % 16), global], usd(1), usd(0.37)))
        ),
        { concurrency: "unbounded" }
      )
      expect(results.every(Either.isRight)).toBe(true)
      expect((yield* batchedSteps) - before).toBeGreaterThan(0)
      for (const instance of instances) {
        yield* Effect.gen(function* () {
          const ledger = yield* SpendLedger
          const spent = yield* ledger.spendOf(global)
          expect(spent.total).toBe(usd(0.37 * 400))
          expect(spent.held).toBe(0n)
          for (let t = 0; t < 16; t++) {
            const team = yield* ledger.spendOf(teamScope(t))
            expect(team.total).toBe(usd(0.37 * 25))
            expect(team.held).toBe(0n)
          }
          const logs = yield* Effect.flatMap(SpendLogRepo, (repo) => repo.query({ limit: 100_000 }))
          expect(logs.length).toBe(400)
          expect(logs.reduce((sum, row) => Money.add(sum, row.cost), Money.zero)).toBe(usd(0.37 * 400))
        }).pipe(Effect.provide(instance))
      }
    })
  )

  it.scoped("a capped global budget admits exactly what fits across 12 teams, never more", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      const instances = [yield* storeOn(url), yield* storeOn(url)]
      const first = instances[0]
      if (first === undefined) return yield* Effect.dieMessage("no instance")
      yield* Effect.provide(
        Effect.flatMap(BudgetRepo, (budgets) =>
          budgets.upsert(Schema.decodeSync(Ids.BudgetId)("global"), { maxBudget: Option.some(usd(25)) })
        ),
        first
      )
      const results = yield* Effect.all(
        Array.from({ length: 300 }, (_, i) =>
          on(instances, i, holdAndSettle([teamScope(i % 12), global], usd(1), usd(1)))
        ),
        { concurrency: "unbounded" }
      )
      const refused = results.flatMap((result) => (Either.isLeft(result) ? [result.left] : []))
      expect(results.filter(Either.isRight).length).toBe(25)
      expect(refused.length).toBe(275)
      for (const error of refused) {
        expect(error._tag).toBe("BudgetExceeded")
        if (error._tag === "BudgetExceeded") {
          expect(error.scope).toBe("global")
          expect(error.spend + error.held + error.requested > error.maxBudget).toBe(true)
        }
      }
      const spent = yield* Effect.provide(
        Effect.flatMap(SpendLedger, (ledger) => ledger.spendOf(global)),
        first
      )
      expect(spent.total).toBe(usd(25))
      expect(spent.held).toBe(0n)
    })
  )

  it.scoped("a window that must reset first is handed back and reset once, exactly", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      const instance = yield* storeOn(url)
      yield* Effect.gen(function* () {
        const members = yield* makeTeamOf(["ann", "bob"], limits({ maxBudget: 60, budgetDuration: "1d" }))
        const ledger = yield* SpendLedger
        const team: Scope.ScopeRef = { kind: "team", id: teamId("pool") }
        for (const member of members) {
          const held = yield* ledger.hold(holdRequest(member.world.scopes, usd(1)))
          yield* ledger.settle(held, usd(25), draft(held))
        }
        // The stored window is yesterday's, with $50 of $60 spent in it: only a reset lets 40 more fit.
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE tb_counters SET window_start = -86400000, window_end = 0 WHERE scope_key = 'team:pool'`
        const results = yield* Effect.all(
          Array.from({ length: 40 }, (_, i) => {
            const member = members[i % members.length]
            return member === undefined
              ? Effect.dieMessage("no member")
              : Effect.either(ledger.hold(holdRequest(member.world.scopes, usd(1))))
          }),
          { concurrency: "unbounded" }
        )
        expect(results.every(Either.isRight)).toBe(true)
        const spent = yield* ledger.spendOf(team)
        expect(spent.current).toBe(0n)
        expect(spent.total).toBe(usd(50))
        expect(spent.held).toBe(usd(40))
      }).pipe(Effect.provide(instance))
    })
  )
})
