/**
 * Claims of budget events: the store decides which instance publishes an event.
 *
 * Every instance that sees a crossing computes the same event id; the first claim of
 * that id wins and its instance alone publishes, so an event is delivered once per
 * crossing however many instances see it.
 *
 * @since 0.1.0
 */
import { Context, type Effect } from "effect"
import type { StoreError } from "./StoreError.js"

/** @since 0.1.0 */
export interface EventClaimsShape {
  /**
   * Claims an event id atomically; `true` for the one caller that claimed it first.
   * `expiresAt` (epoch milliseconds) is when the crossing can no longer be seen again
   * (the end of its window, say), after which the claim may be pruned; `undefined`
   * keeps it.
   */
  readonly claim: (eventId: string, expiresAt: number | undefined) => Effect.Effect<boolean, StoreError>
  /** Forgets claims that expired before `now`; returns how many. */
  readonly prune: (now: number) => Effect.Effect<number, StoreError>
}

/** @since 0.1.0 */
export class EventClaims extends Context.Tag("teambudget/EventClaims")<EventClaims, EventClaimsShape>() {}
