/**
 * The SDK's metrics, as Effect metrics: a host that provides OpenTelemetry (or reads
 * them with `Metric.value`) sees them; the SDK ships no exporter.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/** Requests admitted by {@link BudgetPolicy.authorize}. @since 0.1.0 */
export const admissions = Metric.counter("teambudget_admissions_total", {
  description: "Requests admitted by BudgetPolicy.authorize",
  incremental: true
})

/** Requests refused, tagged with `reason` (the error tag) and `scope` where one applies. @since 0.1.0 */
export const refusals = Metric.counter("teambudget_refusals_total", {
  description: "Requests refused by BudgetPolicy.authorize, by reason and scope",
  incremental: true
})

/** Holds placed by this process and not yet settled or released. @since 0.1.0 */
export const holdsOpen = Metric.gauge("teambudget_holds_open", {
  description: "Holds placed by this process and not yet settled or released"
})

/** Settled spend, in nano-dollars. @since 0.1.0 */
export const spendNanos = Metric.counter("teambudget_spend_nanodollars_total", {
  description: "Settled spend in nano-dollars (1e-9 USD)",
  bigint: true,
  incremental: true
})

/** Keys looked up in the store because the key cache did not have them. @since 0.1.0 */
export const keyCacheMisses = Metric.counter("teambudget_key_cache_misses_total", {
  description: "Keys looked up in the store because the key cache did not have them",
  incremental: true
})
