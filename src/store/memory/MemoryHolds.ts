/**
 * Hold bookkeeping of the memory store: expired holds give their money back, and
 * markers of closed holds are forgotten after a few TTLs, or sooner past the store's
 * spend-log capacity.
 *
 * @since 0.1.0
 */
import * as Money from "../../domain/Money.js"
import type { HoldId } from "../../domain/Ids.js"
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

/** Remembers that a hold was closed, so a second settle or release of it is refused. @since 0.1.0 */
export const markClosed = (
  state: MemoryState,
  holdId: HoldId,
  closed: "settled" | "released",
  now: number
): void => {
  const marker = { holdId, state: closed, at: now }
  state.closed.set(holdId, marker)
  state.closedOrder.push(marker)
}

/**
 * Reclaims the holds that expired by `now` and prunes old closed markers; returns
 * how many holds were reclaimed. Both are in time order (the TTL is constant),
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
  const order = state.closedOrder
  while (state.closedHead < order.length) {
    const oldest = order[state.closedHead]
    if (oldest === undefined) break
    if (oldest.at >= forgetBefore && order.length - state.closedHead <= state.logCapacity) break
    // A hold id placed again since has a newer marker, which stays.
    if (state.closed.get(oldest.holdId) === oldest) state.closed.delete(oldest.holdId)
    state.closedHead++
  }
  if (state.closedHead > 1024 && state.closedHead * 2 > order.length) {
    order.splice(0, state.closedHead)
    state.closedHead = 0
  }
  return reclaimed
}
