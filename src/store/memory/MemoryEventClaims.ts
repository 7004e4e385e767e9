/**
 * Event claims of the memory store: one process, so a map is atomic enough.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { EventClaimsShape } from "../EventClaims.js"

/** @since 0.1.0 */
export const make = (): EventClaimsShape => {
  // Event id -> when the claim may be forgotten (infinity: never).
  const claims = new Map<string, number>()
  return {
    claim: (eventId, expiresAt) =>
      Effect.sync(() => {
        if (claims.has(eventId)) return false
        claims.set(eventId, expiresAt ?? Number.POSITIVE_INFINITY)
        return true
      }),
    prune: (now) =>
      Effect.sync(() => {
        let pruned = 0
        for (const [eventId, expiresAt] of claims) {
          if (expiresAt < now) {
            claims.delete(eventId)
            pruned++
          }
        }
        return pruned
      })
  }
}
