/**
 * Key-cache invalidation across instances through PostgreSQL `LISTEN`/`NOTIFY`. An
 * admin write on one instance reaches the key caches of every instance on the same
 * database within milliseconds, so a blocked or deleted key stops working everywhere.
 *
 * The listening connection is watched (in real time): the instance pings itself on the channel, and
 * when its own pings stop coming back (the connection died, say, while the database
 * was unreachable) it listens again on a new connection. Announcements may have been
 * missed meanwhile, so every (re)connection also tells the local caches to drop what
 * they hold.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg/PgClient"
import { Duration, Effect, Layer, PubSub, Ref, Stream } from "effect"
import { Invalidation } from "../../services/Invalidation.js"
import { realClock } from "./SqlErrors.js"

/** @since 0.1.0 */
export interface PgInvalidationOptions {
  /** The channel name. Default `teambudget_invalidation`. */
  readonly channel?: string
  /** How often the listening connection is checked. Default 2 seconds. */
  readonly heartbeat?: Duration.DurationInput
}

const PING = "ping:"

/**
 * An `Invalidation` shared by every instance on the database of the `PgClient`.
 *
 * `PgClient.notify` of `@effect/sql-pg` 0.53 sends a parameter where PostgreSQL
 * accepts none, so announcements go through `SELECT pg_notify($1, $2)`.
 *
 * @example
 * import { Layer } from "effect"
 * import { PgClient } from "@effect/sql-pg"
 * import { Redacted } from "effect"
 * import { SqlStore } from "teambudget"
 *
 * const invalidation = SqlStore.layerPgInvalidation().pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://localhost/app") }))
 * )
 * @since 0.1.0
 */
export const layer = (options: PgInvalidationOptions = {}): Layer.Layer<Invalidation, never, PgClient> =>
  Layer.scoped(
    Invalidation,
    Effect.gen(function* () {
      const pg = yield* PgClient
      const channel = options.channel ?? "teambudget_invalidation"
      const heartbeat = Duration.decode(options.heartbeat ?? Duration.seconds(2))
      const hub = yield* PubSub.sliding<void>(16)
      const instance = crypto.randomUUID()
      const ping = `${PING}${instance}`

      const local = Effect.asVoid(PubSub.publish(hub, undefined))
      const notify = (payload: string) => Effect.asVoid(pg`SELECT pg_notify(${channel}, ${payload})`)

      const session = Effect.gen(function* () {
        const lastPong = yield* Ref.make(yield* realClock.currentTimeMillis)
        const connected = yield* Ref.make(false)
        const onMessage = (payload: string) => {
          if (payload === ping) {
            return Effect.gen(function* () {
              yield* Ref.set(lastPong, yield* realClock.currentTimeMillis)
              // The first ping back proves the LISTEN is up: drop whatever may have been missed before.
              if (!(yield* Ref.getAndSet(connected, true))) yield* local
            })
          }
          return payload === instance || payload.startsWith(PING) ? Effect.void : local
        }
        const listening = Stream.runForEach(pg.listen(channel), onMessage)
        const watchdog = Effect.gen(function* () {
          for (;;) {
            yield* Effect.ignore(notify(ping))
            yield* realClock.sleep(heartbeat)
            const silent = (yield* realClock.currentTimeMillis) - (yield* Ref.get(lastPong))
            if (silent > 3 * Duration.toMillis(heartbeat)) return
          }
        })
        yield* Effect.raceFirst(listening, watchdog)
      })

      yield* session.pipe(
        Effect.scoped,
        Effect.catchAllCause((cause) => Effect.logDebug("Invalidation listener restarts", cause)),
        Effect.zipRight(realClock.sleep(heartbeat)),
        Effect.forever,
        Effect.forkScoped
      )

      // The write being announced has committed; a brief blip must not keep other
      // instances serving the old principal until their cache expires.
      const announce = (attempt: number): Effect.Effect<void> =>
        notify(instance).pipe(
          Effect.catchAllCause((cause) =>
            attempt < 3
              ? Effect.zipRight(realClock.sleep(Duration.millis(100 * 2 ** attempt)), announce(attempt + 1))
              : Effect.logWarning("Could not announce an invalidation to other instances", cause)
          )
        )

      return {
        publish: Effect.zipRight(local, announce(0)),
        subscribe: PubSub.subscribe(hub)
      }
    })
  )
