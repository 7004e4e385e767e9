/**
 * Many ledger steps in one transaction (group commit): holds and settles that waited
 * at the same moment lock the union of their counters once, in key order, are decided
 * one after the other in arrival order against the counters as the steps before them
 * left them, and are written back in a few multi-row statements. One commit, and on
 * PostgreSQL one wait for the write-ahead log, serves the whole batch; the hot counter
 * row of a shared budget is written once per batch instead of once per step.
 *
 * Each step comes out exactly as it would alone, in that order: a hold that does not
 * fit is refused on its own, and the steps after it see the counters without it. The
 * batch decides only the common case (every counter exists and decodes, no open hold
 * anywhere has expired, a settled hold is open, unexpired and on the same scopes); any
 * other step is handed back (`Fallback`) and runs alone, through the usual step.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { DateTime, Effect, Either } from "effect"
import type { BudgetExceeded } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import type { Hold, HoldRequest, Settlement, SpendLogDraft } from "../SpendLedger.js"
import * as CounterStatements from "./CounterStatements.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import * as Holds from "./Holds.js"
import * as Statements from "./LedgerBatchStatements.js"
import * as PgLedgerBatch from "./PgLedgerBatch.js"
import { isUniqueViolation } from "./SqlErrors.js"

/** A hold waiting for a batch; `keys` are its distinct scope keys in scope order. @since 0.1.0 */
export interface HoldStep {
  readonly _tag: "Hold"
  readonly request: HoldRequest
  readonly keys: ReadonlyArray<string>
  readonly now: number
}

/** A settle waiting for a batch. @since 0.1.0 */
export interface SettleStep {
  readonly _tag: "Settle"
  readonly hold: Hold
  readonly keys: ReadonlyArray<string>
  readonly cost: Money.Money
  readonly log: SpendLogDraft
  readonly now: number
}

/** @since 0.1.0 */
export type Step = HoldStep | SettleStep

/** What the batch made of one step. @since 0.1.0 */
export type Verdict =
  | { readonly _tag: "Held"; readonly hold: Hold }
  | { readonly _tag: "Refused"; readonly error: BudgetExceeded }
  | { readonly _tag: "Settled"; readonly settlement: Settlement }
  | { readonly _tag: "Fallback" }

const FALLBACK: Verdict = { _tag: "Fallback" }

/** The batch wrote less than it decided: roll it back and let every step run alone. */
interface Conflict {
  readonly _tag: "BatchConflict"
}
const CONFLICT: Conflict = { _tag: "BatchConflict" }

const sameKeys = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((key, i) => key === b[i])

const idOf = (step: Step): string => (step._tag === "Hold" ? step.request.holdId : step.hold.holdId)

/**
 * Runs `steps` as one transaction and answers each in order. A batch that meets a
 * conflict it did not foresee (a hold id inserted meanwhile, a hold closed under it)
 * is rolled back whole and every step is handed back.
 *
 * @since 0.1.0
 */
export const run = (
  sql: SqlClient,
  holdTtlMillis: number,
  steps: ReadonlyArray<Step>
): Effect.Effect<ReadonlyArray<Verdict>, SqlError> => {
  // PostgreSQL decides the whole batch in one call, in its own transaction.
  if (Dialect.hasFastPath(sql)) return PgLedgerBatch.run(sql, holdTtlMillis, steps)
  // One time for the batch: windows only ever move forward, whatever order the steps read the clock in.
  const now = steps.reduce((max, step) => Math.max(max, step.now), 0)
  const keys = [...new Set(steps.flatMap((step) => step.keys))].sort(CounterStatements.compareKeys)
  const ids = [...new Set(steps.map(idOf))]
  const body = Effect.gen(function* () {
    const read = yield* Statements.read(sql, keys, ids, now)
    if (read.expired) return steps.map(() => FALLBACK)
    const counters = new Map<string, Counters.Counter>()
    for (const row of read.counters) {
      // A row that does not decode is left out: only the steps that need it go alone (and fail).
      const decoded = Counters.decodeCounters([row])
      if (Either.isRight(decoded)) for (const counter of decoded.right) counters.set(counter.key, counter)
    }
    const holds = new Map<string, Holds.HoldRow | undefined>()
    for (const row of read.holds) {
      holds.set(String(row["hold_id"]), Either.getOrUndefined(Holds.decodeHold(row)))
    }

    const dirty = new Set<string>()
    const opened: Array<{ readonly step: HoldStep; readonly held: Money.Money }> = []
    const settled: Array<{ readonly step: SettleStep; readonly row: Holds.HoldRow }> = []

    /** Brings the counters of `stepKeys` up to `now`; undefined when one is missing or corrupt. */
    const rolled = (stepKeys: ReadonlyArray<string>) => {
      const views = new Map<string, Counters.View>()
      const current: Array<Counters.Rolled> = []
      for (const key of stepKeys) {
        const counter = counters.get(key)
        if (counter === undefined) return undefined
        const roll = Counters.roll(counter, now)
        current.push(roll)
        views.set(key, Counters.view(roll.counter, roll.window))
      }
      return { views, current }
    }

    const write = (counter: Counters.Counter) => {
      counters.set(counter.key, counter)
      dirty.add(counter.key)
    }

    const holdOne = (step: HoldStep): Verdict => {
      if (holds.has(step.request.holdId)) return FALLBACK
      const seen = rolled(step.keys)
      if (seen === undefined) return FALLBACK
      for (const roll of seen.current) if (roll.changed) write(roll.counter)
      const error = Counters.refusal(step.request, seen.views)
      if (error !== undefined) return { _tag: "Refused", error }
      const held = step.request.mode === "strict" ? step.request.amount : Money.zero
      if (held !== Money.zero) {
        for (const roll of seen.current) {
          write({ ...roll.counter, held: Money.add(roll.counter.held, held) })
        }
      }
      const expiresAt = step.now + holdTtlMillis
      holds.set(step.request.holdId, undefined)
      opened.push({ step, held })
      return {
        _tag: "Held",
        hold: {
          holdId: step.request.holdId,
          scopes: step.request.scopes,
          amount: held,
          expiresAt: DateTime.unsafeMake(expiresAt),
          tightest: Counters.tightest(step.request.scopes, seen.views, held)
        }
      }
    }

    const settleOne = (step: SettleStep): Verdict => {
      const row = holds.get(step.hold.holdId)
      if (row === undefined || row.state !== "open" || row.expires_at <= now) return FALLBACK
      if (!sameKeys(row.scope_keys, step.keys)) return FALLBACK
      const seen = rolled(step.keys)
      if (seen === undefined) return FALLBACK
      const views = new Map<string, Counters.View>()
      for (const roll of seen.current) {
        const next: Counters.Counter = {
          ...roll.counter,
          held: Money.minus(roll.counter.held, row.amount),
          total: Money.add(roll.counter.total, step.cost),
          windowSpend: Money.add(roll.counter.windowSpend, step.cost)
        }
        write(next)
        views.set(next.key, Counters.view(next, roll.window))
      }
      holds.set(step.hold.holdId, { ...row, state: "settled" })
      settled.push({ step, row })
      return {
        _tag: "Settled",
        settlement: {
          cost: step.cost,
          late: false,
          tightest: Counters.tightest(step.hold.scopes, views, Money.zero)
        }
      }
    }

    const verdicts = steps.map((step) => (step._tag === "Hold" ? holdOne(step) : settleOne(step)))
    const still = yield* Statements.write(sql, {
      now,
      counters: [...dirty].flatMap((key) => {
        const counter = counters.get(key)
        return counter === undefined ? [] : [counter]
      }),
      opened: opened.map(({ held, step }) => ({
        holdId: step.request.holdId,
        scopeKeys: Holds.encodeKeys(step.keys),
        amount: held,
        expiresAt: step.now + holdTtlMillis
      })),
      closed: settled.map(({ row, step }) => ({
        holdId: step.hold.holdId,
        amount: row.amount,
        expiresAt: row.expires_at
      })),
      logs: settled.map(({ step }) => ({ log: step.log, cost: step.cost }))
    })
    if (still !== settled.length) return yield* Effect.fail(CONFLICT)
    return verdicts
  })
  return sql
    .withTransaction(body)
    .pipe(
      Effect.catchAll((error) =>
        error._tag === "BatchConflict" || isUniqueViolation(error)
          ? Effect.succeed(steps.map(() => FALLBACK))
          : Effect.fail(error)
      )
    )
}
