/**
 * What runs the HTTP handlers' Effects from Promise-based hosts: a `Runtime` (from
 * `Effect.runtime()`) or a `ManagedRuntime` (from `ManagedRuntime.make(layer)`).
 *
 * @since 0.1.0
 */
import { type Effect, ManagedRuntime, Runtime } from "effect"

/** @since 0.1.0 */
export type Runner<R> = Runtime.Runtime<R> | ManagedRuntime.ManagedRuntime<R, unknown>

const isManaged = <R>(runner: Runner<R>): runner is ManagedRuntime.ManagedRuntime<R, unknown> =>
  ManagedRuntime.isManagedRuntime(runner)

/**
 * Runs an infallible Effect to a Promise with a runner.
 *
 * @since 0.1.0
 */
export const runPromise =
  <R>(runner: Runner<R>) =>
  <A>(effect: Effect.Effect<A, never, R>): Promise<A> =>
    isManaged(runner) ? runner.runPromise(effect) : Runtime.runPromise(runner, effect)
