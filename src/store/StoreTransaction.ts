/**
 * Runs several repository calls as one unit: all of their writes happen or none do.
 * SQL stores open a transaction; the memory store runs the unit alone, excluding other
 * units (its single writes are atomic by construction).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { StoreUnavailable } from "../domain/Errors.js"

/** @since 0.1.0 */
export interface StoreTransactionShape {
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreUnavailable, R>
}

/** @since 0.1.0 */
export class StoreTransaction extends Context.Tag("teambudget/StoreTransaction")<
  StoreTransaction,
  StoreTransactionShape
>() {}

/**
 * One unit at a time, in process: for the memory store.
 *
 * @since 0.1.0
 */
export const layerSerial: Layer.Layer<StoreTransaction> = Layer.effect(
  StoreTransaction,
  Effect.map(Effect.makeSemaphore(1), (semaphore) => ({
    run: (effect) => semaphore.withPermits(1)(effect)
  }))
)
