/**
 * Response headers of a guarded LLM call: what budget is left, and the rate limits
 * that apply.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import type { Limits } from "../domain/Limits.js"
import * as Money from "../domain/Money.js"
import type { Principal } from "../domain/Principal.js"
import type { Admission } from "../services/BudgetPolicy.js"
import * as RateLimiter from "../services/RateLimiter.js"
import type { Headroom } from "../store/SpendLedger.js"

/** @since 0.1.0 */
export const REMAINING_BUDGET = "x-budget-remaining-usd"

/**
 * Money as an exact decimal USD string (`12.5`, `0.000000001`), so a header never shows
 * a float artefact or an exponent.
 *
 * @since 0.1.0
 */
export const usdString = (money: Money.Money): string => {
  const whole = money / Money.NANOS_PER_USD
  const fraction = (money % Money.NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "")
  return fraction === "" ? whole.toString() : `${whole}.${fraction}`
}

/**
 * `x-budget-remaining-usd`: what the tightest binding scope has left; nothing when no
 * scope has a budget.
 *
 * @since 0.1.0
 */
export const remainingBudget = (
  tightest: Option.Option<Headroom>
): ReadonlyArray<readonly [string, string]> =>
  Option.match(tightest, {
    onNone: () => [],
    onSome: (headroom) => [[REMAINING_BUDGET, usdString(headroom.remaining)]]
  })

const smallest = (values: ReadonlyArray<Option.Option<number>>): Option.Option<number> =>
  values.reduce<Option.Option<number>>(
    (least, value) =>
      Option.isNone(value)
        ? least
        : Option.some(
            Option.match(least, { onNone: () => value.value, onSome: (l) => Math.min(l, value.value) })
          ),
    Option.none()
  )

/**
 * The limits of every scope of a principal.
 *
 * @since 0.1.0
 */
export const limitsOf = (principal: Principal): ReadonlyArray<Limits> => [
  principal.key.limits,
  ...Option.toArray(Option.map(principal.user, (user) => user.limits)),
  ...Option.toArray(Option.flatMap(principal.membership, (m) => Option.map(m.budget, (b) => b.limits))),
  ...Option.toArray(Option.map(principal.team, (team) => team.limits)),
  ...Option.toArray(Option.map(principal.organization, (org) => org.limits))
]

/**
 * `x-ratelimit-limit-requests` and `x-ratelimit-limit-tokens`: the tightest `rpm_limit`
 * and `tpm_limit` over the principal's scopes, where one is set. What is left of them
 * is known only from a rate-limit ticket: see {@link admitted}.
 *
 * @example
 * const headers = rateLimits(principal) // [["x-ratelimit-limit-requests", "60"]]
 * @since 0.1.0
 */
export const rateLimits = (principal: Principal): ReadonlyArray<readonly [string, string]> => {
  const limits = limitsOf(principal)
  const headers: Array<readonly [string, string]> = []
  const rpm = smallest(limits.map((l) => l.rpmLimit))
  const tpm = smallest(limits.map((l) => l.tpmLimit))
  if (Option.isSome(rpm)) headers.push(["x-ratelimit-limit-requests", String(rpm.value)])
  if (Option.isSome(tpm)) headers.push(["x-ratelimit-limit-tokens", String(tpm.value)])
  return headers
}

const ticketHeaders = (ticket: RateLimiter.RateTicket): ReadonlyArray<readonly [string, string]> => {
  const headers: Array<readonly [string, string]> = []
  for (const [kind, suffix] of [
    ["requests", "requests"],
    ["tokens", "tokens"]
  ] as const) {
    const tightest = RateLimiter.headroom(ticket, kind)
    if (Option.isSome(tightest)) {
      headers.push([`x-ratelimit-limit-${suffix}`, String(tightest.value.limit)])
      headers.push([`x-ratelimit-remaining-${suffix}`, String(tightest.value.remaining)])
    }
  }
  return headers
}

/**
 * The rate-limit headers of an admitted request (the LLM guard's default): for requests
 * and for tokens, the limit that has the least left after this request, and what it has
 * left (`x-ratelimit-limit-*`, `x-ratelimit-remaining-*`). A request admitted without
 * counting (`failOpen` with the limiter store down) shows the limits only.
 *
 * @example
 * const headers = admitted(admission) // [["x-ratelimit-limit-requests", "60"], ["x-ratelimit-remaining-requests", "59"]]
 * @since 0.1.0
 */
export const admitted = (admission: Admission): ReadonlyArray<readonly [string, string]> =>
  Option.isSome(admission.rate) ? ticketHeaders(admission.rate.value) : rateLimits(admission.principal)
