/**
 * Event claims in the SQL stores: a primary key decides, so two instances claiming
 * the same event id at once get one winner (`INSERT ... ON CONFLICT DO NOTHING`).
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import type { EventClaimsShape } from "../EventClaims.js"
import { guard } from "./SqlErrors.js"
import type { RepoContext } from "./SqlSupport.js"

/** @since 0.1.0 */
export const make = ({ sql, timeout }: RepoContext): EventClaimsShape => ({
  claim: (eventId, expiresAt) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      guard(
        "event.claim",
        timeout
      )(
        Effect.map(
          sql<{ readonly event_id: string }>`INSERT INTO tb_event_claims (event_id, claimed_at, expires_at)
            VALUES (${eventId}, ${now}, ${expiresAt ?? null})
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
          (rows) => rows.length === 1
        )
      )
    ),
  prune: (now) =>
    guard(
      "event.prune",
      timeout
    )(
      Effect.map(
        sql<{ readonly event_id: string }>`DELETE FROM tb_event_claims
          WHERE expires_at IS NOT NULL AND expires_at < ${now} RETURNING event_id`,
        (rows) => rows.length
      )
    )
})
