/**
 * Tells every key cache that an admin write happened, so a blocked or deleted key
 * stops working at once. The local layer reaches caches in this process; a store
 * layer may bridge it to other instances (PostgreSQL `LISTEN`/`NOTIFY`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, type Queue, type Scope } from "effect"

/** @since 0.1.0 */
export interface InvalidationShape {
  /** Announces that cached principals may be stale. */
  readonly publish: Effect.Effect<void>
  /** A queue that receives one item per announcement, from here and (when bridged) from other instances. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<void>, never, Scope.Scope>
}

/** @since 0.1.0 */
export class Invalidation extends Context.Tag("teambudget/Invalidation")<Invalidation, InvalidationShape>() {}

/**
 * In-process only: announcements reach the caches of this process.
 *
 * @since 0.1.0
 */
export const layerLocal: Layer.Layer<Invalidation> = Layer.effect(
  Invalidation,
  Effect.map(PubSub.sliding<void>(16), (hub) => ({
    publish: Effect.asVoid(PubSub.publish(hub, undefined)),
    subscribe: PubSub.subscribe(hub)
  }))
)
