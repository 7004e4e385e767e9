/**
 * Budget events delivered to a plain callback, for the Promise facade.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Fiber, type ManagedRuntime, Queue, Scope } from "effect"
import type { BudgetEvent } from "../../domain/BudgetEvent.js"
import { BudgetEvents } from "../BudgetEvents.js"

/** @since 0.1.0 */
export type BudgetEventCallback = (event: BudgetEvent) => void | Promise<void>

/**
 * Calls `callback` with every event published from now on, one at a time, until the
 * returned function is called. A callback that throws or rejects is logged; the next
 * event comes all the same.
 *
 * @since 0.1.0
 */
export const subscribe = <R, ER>(
  runtime: ManagedRuntime.ManagedRuntime<R | BudgetEvents, ER>,
  callback: BudgetEventCallback
): (() => void) => {
  const scope = runtime.runSync(Scope.make())
  // Subscribed before this returns, so no event published after the call is missed.
  const queue = runtime.runSync(
    Scope.extend(
      Effect.flatMap(BudgetEvents, (events) => events.subscribe),
      scope
    )
  )
  const handle = (event: BudgetEvent) =>
    Effect.tryPromise(async () => callback(event)).pipe(
      Effect.catchAll(({ cause }) =>
        Effect.logWarning(
          `A budget event callback failed: ${cause instanceof Error ? cause.message : String(cause)}`
        )
      )
    )
  const fiber = runtime.runFork(Queue.take(queue).pipe(Effect.flatMap(handle), Effect.forever))
  return () => {
    runtime.runFork(Effect.zipRight(Fiber.interrupt(fiber), Scope.close(scope, Exit.void)))
  }
}
