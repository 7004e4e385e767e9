/**
 * What a scope has spent, as stores report it on every entity.
 *
 * @since 0.1.0
 */
import { Option, Schema } from "effect"
import * as Money from "./Money.js"

/** @since 0.1.0 */
export class SpendSnapshot extends Schema.Class<SpendSnapshot>("SpendSnapshot")({
  /** Everything ever spent (lifetime), kept apart from windows. */
  total: Money.Nanos,
  /** Spent in the current budget window; equal to `total` for a scope without a duration. */
  current: Money.Nanos,
  /** Held by requests in flight. */
  held: Money.Nanos,
  /** End of the current window, when the scope has a duration. */
  resetAt: Schema.OptionFromSelf(Schema.DateTimeUtcFromSelf)
}) {}

/** Nothing spent, nothing held. @since 0.1.0 */
export const empty: SpendSnapshot = new SpendSnapshot({
  total: Money.zero,
  current: Money.zero,
  held: Money.zero,
  resetAt: Option.none()
})
