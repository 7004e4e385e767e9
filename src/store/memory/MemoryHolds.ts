/**
 * Hold bookkeeping of the memory store: expired holds give their money back, and
 * markers of closed holds are forgotten after a few TTLs, or sooner past the store's
 * spend-log capacity.
 *
 * @since 0.1.0
 */
import * as Money from "../../domain/Money.js"
import type { MemoryState, OpenHold } from "./MemoryState.js"

/** How many TTLs a closed hold is remembered, so a late second settle is still refused. */
const CLOSED_MARKER_TTLS = 4

/** Takes the held amount of an open hold off its counters. @since 0.1.0 */
export const unhold = (state: MemoryState, hold: OpenHold): void => {
  if (hold.amount === Money.zero) return
  for (const key of hold.keys) {
    const counter = state.counters.get(key)
    if (counter !== undefined) counter.held = Money.minus(counter.held, hold.amount)
  }
}

/**
 * Reclaims the holds that expired by `now` and prunes old closed markers; returns
 * how many holds were reclaimed. Both maps are in time order (the TTL is constant),
 * so only their heads are looked at: cheap enough to run at the start of every step.
 *
 * @since 0.1.0
 */
export const tick = (state: MemoryState, now: number): number => {
  let reclaimed = 0
  for (const [holdId, hold] of state.holds) {
    if (hold.expiresAt > now) break
    unhold(state, hold)
    state.holds.delete(holdId)
    reclaimed++
  }
  const forgetBefore = now - CLOSED_MARKER_TTLS * state.holdTtlMillis
  // A store that keeps only so many log rows keeps as many markers: under load, four
  // TTLs of markers would otherwise be millions of entries held in memory.
  let excess = state.closed.size - state.logCapacity
  for (const [holdId, marker] of state.closed) {
    if (marker.at >= forgetBefore && excess <= 0) break
    state.closed.delete(holdId)
    excess--
  }
  return reclaimed
}
