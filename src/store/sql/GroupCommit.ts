/**
 * Group commit for the ledger: steps that wait at the same moment are handed over
 * together, so one transaction (and one durable commit) serves all of them.
 *
 * No timer decides a batch. A batch starts as soon as a slot is free and takes
 * everything that queued while the slots were busy, so a lone step goes at once and
 * steps only gather when the database is already the bottleneck (the commit of the
 * batch before is what they wait for).
 *
 * @since 0.1.0
 */
import { Effect, FiberSet, type Scope } from "effect"

/** A queued item; `cancelled` once its caller stopped waiting or was answered, so no batch takes it. @since 0.1.0 */
export interface Pending {
  cancelled: boolean
}

/** @since 0.1.0 */
export interface GroupCommitOptions<T extends Pending> {
  /** Does the work of one batch and answers every item of it; it must not fail. */
  readonly run: (items: ReadonlyArray<T>) => Effect.Effect<void>
  /** The most items one batch takes. */
  readonly maxBatch: number
  /** How many batches may be in flight at once. */
  readonly concurrency: number
  /** Answers items no batch will run: the scope closed before or while their batch ran. */
  readonly abandon: (items: ReadonlyArray<T>) => void
}

/**
 * A queue whose `offer` enqueues an item for the next batch. Batches run in fibers of
 * the enclosing scope, and stop with it.
 *
 * @example
 * import { Effect } from "effect"
 * import * as GroupCommit from "./GroupCommit.js"
 *
 * const program = Effect.gen(function* () {
 *   const offer = yield* GroupCommit.make<{ cancelled: boolean; n: number }>({
 *     run: (items) => Effect.log(`one batch of ${items.length}`),
 *     maxBatch: 100,
 *     concurrency: 1,
 *     abandon: () => {}
 *   })
 *   offer({ cancelled: false, n: 1 })
 * })
 * @since 0.1.0
 */
export const make = <T extends Pending>(
  options: GroupCommitOptions<T>
): Effect.Effect<(item: T) => void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const queue: Array<T> = []
    let running = 0
    // Batches started but not yet past their first yield: they will still take what queues now.
    let starting = 0
    let closed = false
    // Runs before the fiber set stops the batches in flight (finalizers run in reverse).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        options.abandon(queue.splice(0))
      })
    )

    const take = (): ReadonlyArray<T> => {
      const items: Array<T> = []
      while (items.length < options.maxBatch && queue.length > 0) {
        const item = queue.shift()
        if (item !== undefined && !item.cancelled) items.push(item)
      }
      return items
    }

    const batch = Effect.zipRight(
      // Steps that were just answered run first and queue their next step for this batch.
      Effect.yieldNow(),
      Effect.suspend(() => {
        starting--
        const items = take()
        pump()
        if (items.length === 0) return Effect.void
        return Effect.onInterrupt(options.run(items), () => Effect.sync(() => options.abandon(items)))
      })
    ).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          running--
          pump()
        })
      )
    )

    const pump = (): void => {
      while (!closed && running < options.concurrency && queue.length > 0 && starting === 0) {
        running++
        starting++
        runFork(batch)
      }
    }

    return (item: T) => {
      if (closed) return options.abandon([item])
      queue.push(item)
      pump()
    }
  })
