/**
 * A small cache for the request path: bounded, with a time to live per entry, one
 * lookup at a time per key (concurrent misses share it), and `clear` that also
 * voids lookups already under way (their result was read before the write that
 * cleared the cache, so it must not be stored).
 *
 * Effect's `Cache` does all of this too, but costs several times more per hit, and a
 * hit is what every request of a warm key does.
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Effect, Exit } from "effect"

/** @since 0.1.0 */
export interface TtlCache<K, A, E> {
  readonly get: (key: K) => Effect.Effect<A, E>
  readonly clear: Effect.Effect<void>
}

interface Entry<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly expiresAt: number
}

/**
 * @param timeToLive milliseconds to keep a result; `0` keeps nothing (the result is only shared with concurrent callers).
 * @since 0.1.0
 */
export const make = <K, A, E>(options: {
  readonly capacity: number
  readonly lookup: (key: K) => Effect.Effect<A, E>
  readonly timeToLive: (exit: Exit.Exit<A, E>) => number
}): TtlCache<K, A, E> => {
  const entries = new Map<K, Entry<A, E>>()
  const pending = new Map<K, Deferred.Deferred<A, E>>()
  let generation = 0

  const store = (key: K, exit: Exit.Exit<A, E>, now: number): void => {
    const ttl = options.timeToLive(exit)
    if (ttl <= 0) return
    entries.delete(key)
    // Map order is insertion order: the first entry is the one stored longest ago.
    if (entries.size >= options.capacity) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
    entries.set(key, { exit, expiresAt: now + ttl })
  }

  const miss = (key: K) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const deferred = yield* Deferred.make<A, E>()
        pending.set(key, deferred)
        const started = generation
        const exit = yield* Effect.exit(restore(options.lookup(key)))
        if (pending.get(key) === deferred) pending.delete(key)
        if (started === generation) store(key, exit, yield* Clock.currentTimeMillis)
        yield* Deferred.done(deferred, exit)
        return yield* exit
      })
    )

  const get = (key: K): Effect.Effect<A, E> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const entry = entries.get(key)
      if (entry !== undefined) {
        if (entry.expiresAt > now) return entry.exit
        entries.delete(key)
      }
      const inFlight = pending.get(key)
      return inFlight === undefined ? miss(key) : Deferred.await(inFlight)
    })

  const clear = Effect.sync(() => {
    generation++
    entries.clear()
    pending.clear()
  })

  return { get, clear }
}
