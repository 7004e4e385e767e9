/**
 * Helpers for the budget event tests: spending exact amounts through the request path
 * and collecting what a subscription received.
 */
import { Chunk, Effect, Option, Queue } from "effect"
import { BudgetEvents, BudgetPolicy, type BudgetEvent, Limits } from "../../src/index.js"
import { limits, makeKey, makeTeam, usd } from "./fixtures.js"

/**
 * Spends `dollars` with `token` through authorize and settle. With the test price of
 * "big" ($0.01 a token) and no output, the hold and the charge are both exact.
 */
export const spend = (token: string, dollars: number) =>
  Effect.gen(function* () {
    const policy = yield* BudgetPolicy.BudgetPolicy
    const tokens = Math.round(dollars * 100)
    const admission = yield* policy.authorize({
      apiKey: token,
      model: "big",
      promptTokens: tokens,
      maxOutputTokens: 0
    })
    return yield* policy.settle(admission, { promptTokens: tokens, completionTokens: 0 })
  })

/** Waits until every queued check is done, then takes what the subscription received. */
export const received = (queue: Queue.Dequeue<BudgetEvent.BudgetEvent>) =>
  Effect.gen(function* () {
    yield* Effect.flatMap(BudgetEvents.BudgetEvents, (events) => events.idle)
    return Chunk.toReadonlyArray(yield* Queue.takeAll(queue))
  })

/** A short, comparable form of an event: `Threshold 80 team:eng`. */
export const describeEvent = (event: BudgetEvent.BudgetEvent): string => {
  const scope = `${event.scope.kind}:${event.scope.id}`
  switch (event._tag) {
    case "BudgetThresholdReached":
      return `Threshold ${event.percent} ${scope}`
    case "SoftBudgetCrossed":
      return `Soft ${scope}`
    case "BudgetWindowReset":
      return `Reset ${scope}`
    case "KeyExpiring":
      return `Expiring ${scope}`
  }
}

/** Limits with a max budget, a soft budget and a window, in USD. */
export const budgetLimits = (fields: { maxBudget: number; softBudget?: number; budgetDuration?: string }) =>
  new Limits.Limits({
    ...limits(fields),
    softBudget: Option.map(Option.fromNullable(fields.softBudget), usd)
  })

/**
 * A subscription to the events, then team `id` with `teamLimits` and a key on it: the
 * start of most event tests.
 */
export const subscribedTeam = (id: string, teamLimits: Limits.Limits) =>
  Effect.gen(function* () {
    const events = yield* BudgetEvents.BudgetEvents
    const queue = yield* events.subscribe
    yield* makeTeam(id, teamLimits)
    return { events, queue, token: yield* makeKey({ team: id }) }
  })
