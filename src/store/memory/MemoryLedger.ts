/**
 * The spend ledger of the memory store. Each operation reads the clock, then does
 * all of its checks and writes in one synchronous step: no other fiber can run in
 * between, so a hold on several scopes is all or nothing, and hundreds of concurrent
 * holds never take more than a budget has.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import type * as BudgetWindow from "../../domain/BudgetWindow.js"
import { BudgetExceeded, HoldClosed } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import * as Scope from "../../domain/Scope.js"
import type {
  Headroom,
  Hold,
  HoldRequest,
  Settlement,
  SpendLedgerShape,
  SpendLogDraft
} from "../SpendLedger.js"
import { counterOf, current, empty, resetAt, roll, snapshot } from "./MemoryCounters.js"
import { traced } from "../../services/internal/traced.js"
import { markClosed, tick, unhold } from "./MemoryHolds.js"
import { type Counter, limitsOf, type LogRow, type MemoryState } from "./MemoryState.js"

/** A scope with a cap, as one step saw it. */
interface Bound {
  readonly scope: Scope.ScopeRef
  readonly counter: Counter
  readonly window: BudgetWindow.Window | undefined
  readonly maxBudget: Money.Money
}

/** The bound scope with the least left, ties going to the first in scope order. */
const tightest = (bound: ReadonlyArray<Bound>): Option.Option<Headroom> => {
  let best: Bound | undefined
  let bestRemaining = 0n
  for (const entry of bound) {
    const used = current(entry.counter, entry.window) + entry.counter.held
    const remaining = entry.maxBudget > used ? entry.maxBudget - used : 0n
    if (best === undefined || remaining < bestRemaining) {
      best = entry
      bestRemaining = remaining
    }
  }
  return best === undefined
    ? Option.none()
    : Option.some({
        scope: best.scope,
        remaining: Money.make(bestRemaining),
        maxBudget: best.maxBudget,
        resetAt: resetAt(best.window)
      })
}

const DUPLICATE = "duplicate"

const holdStep = (
  state: MemoryState,
  request: HoldRequest,
  now: number
): Hold | BudgetExceeded | typeof DUPLICATE => {
  tick(state, now)
  const { holdId, amount, mode } = request
  if (state.holds.has(holdId)) return DUPLICATE
  const scopes: Array<Scope.ScopeRef> = []
  const keys: Array<string> = []
  const counters: Array<Counter> = []
  const bound: Array<Bound> = []
  // Counters of scopes seen for the first time are kept only if the hold is admitted:
  // a refusal leaves nothing behind.
  const made = new Map<string, Counter>()
  for (const scope of request.scopes) {
    const key = Scope.key(scope)
    // A scope named twice is held once, as the SQL stores hold it.
    if (keys.includes(key)) continue
    scopes.push(scope)
    let counter = state.counters.get(key)
    if (counter === undefined) {
      counter = empty(now)
      made.set(key, counter)
    }
    keys.push(key)
    counters.push(counter)
    const limits = limitsOf(state, scope)
    if (limits === undefined || Option.isNone(limits.maxBudget)) continue
    const window = roll(counter, limits, now)
    const spend = current(counter, window)
    const maxBudget = limits.maxBudget.value
    const refused = mode === "strict" ? spend + counter.held + amount > maxBudget : spend >= maxBudget
    if (refused) {
      return new BudgetExceeded({
        scope: scope.kind,
        id: Scope.displayId(scope),
        spend,
        held: counter.held,
        maxBudget,
        requested: amount,
        resetAt: resetAt(window)
      })
    }
    bound.push({ scope, counter, window, maxBudget })
  }
  for (const [key, counter] of made) state.counters.set(key, counter)
  const held = mode === "strict" ? amount : Money.zero
  if (held !== Money.zero) {
    for (const counter of counters) counter.held = Money.add(counter.held, held)
  }
  const expiresAt = now + state.holdTtlMillis
  state.closed.delete(holdId)
  state.holds.set(holdId, { scopes, keys, amount: held, expiresAt })
  return {
    holdId,
    scopes,
    amount: held,
    expiresAt: DateTime.unsafeMake(expiresAt),
    tightest: tightest(bound)
  }
}

const appendLog = (state: MemoryState, row: LogRow): void => {
  state.logs.push(row)
  // Trimming in batches keeps appends O(1) amortised; queries only read the newest `logCapacity`.
  if (state.logs.length >= 2 * state.logCapacity) state.logs.splice(0, state.logs.length - state.logCapacity)
}

const settleStep = (
  state: MemoryState,
  hold: Hold,
  cost: Money.Money,
  log: SpendLogDraft,
  now: number
): Settlement | HoldClosed => {
  tick(state, now)
  const open = state.holds.get(hold.holdId)
  let late = false
  if (open !== undefined) {
    state.holds.delete(hold.holdId)
    unhold(state, open)
  } else {
    const closed = state.closed.get(hold.holdId)
    if (closed !== undefined) return new HoldClosed({ holdId: hold.holdId, state: closed.state })
    late = true
  }
  const scopes = open?.scopes ?? hold.scopes
  const bound: Array<Bound> = []
  const charged = new Set<string>()
  for (let i = 0; i < scopes.length; i++) {
    const scope = scopes[i]
    if (scope === undefined) continue
    const key = open?.keys[i] ?? Scope.key(scope)
    if (charged.has(key)) continue
    charged.add(key)
    const counter = counterOf(state, key, now)
    const limits = limitsOf(state, scope)
    const window = roll(counter, limits, now)
    counter.total = Money.add(counter.total, cost)
    counter.windowSpend = Money.add(counter.windowSpend, cost)
    if (limits !== undefined && Option.isSome(limits.maxBudget)) {
      bound.push({ scope, counter, window, maxBudget: limits.maxBudget.value })
    }
  }
  markClosed(state, hold.holdId, "settled", now)
  appendLog(state, { draft: log, cost, endedAt: now })
  return { cost, late, tightest: tightest(bound) }
}

const releaseStep = (state: MemoryState, hold: Hold, now: number): HoldClosed | undefined => {
  tick(state, now)
  const open = state.holds.get(hold.holdId)
  if (open !== undefined) {
    state.holds.delete(hold.holdId)
    unhold(state, open)
  } else {
    const closed = state.closed.get(hold.holdId)
    if (closed !== undefined) return new HoldClosed({ holdId: hold.holdId, state: closed.state })
    // Expired and reclaimed already: nothing is held any more.
  }
  markClosed(state, hold.holdId, "released", now)
  return undefined
}

/**
 * The ledger over a memory state. `hold`, `settle` and `release` are on every
 * request's path: their spans exist only when the host installed a tracer.
 *
 * @since 0.1.0
 */
export const make = (state: MemoryState): SpendLedgerShape => ({
  hold: traced(
    "SpendLedger.hold",
    // Plain combinators rather than a generator: this runs on every request.
    (request: HoldRequest) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const result = holdStep(state, request, now)
        if (result === DUPLICATE) return Effect.dieMessage("A hold with this id is open already.")
        return result instanceof BudgetExceeded ? Effect.fail(result) : Effect.succeed(result)
      })
  ),
  settle: traced("SpendLedger.settle", (hold: Hold, cost: Money.Money, log: SpendLogDraft) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const result = settleStep(state, hold, cost, log, now)
      return result instanceof HoldClosed ? Effect.fail(result) : Effect.succeed(result)
    })
  ),
  release: traced(
    "SpendLedger.release",
    Effect.fnUntraced(function* (hold: Hold) {
      const now = yield* Clock.currentTimeMillis
      const closed = releaseStep(state, hold, now)
      if (closed !== undefined) return yield* closed
    })
  ),
  reclaimExpired: Effect.fn("SpendLedger.reclaimExpired")(function* () {
    const now = yield* Clock.currentTimeMillis
    return tick(state, now)
  }),
  spendOf: Effect.fn("SpendLedger.spendOf")(function* (scope: Scope.ScopeRef) {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    return snapshot(state, Scope.key(scope), limitsOf(state, scope), now)
  })
})
