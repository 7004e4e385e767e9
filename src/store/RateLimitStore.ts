/**
 * Where rate-limit counters live. The memory store keeps them in the process; the SQL
 * stores keep them in the database and Redis keeps them in Redis, so several
 * instances share one set of counters (SPEC 8).
 *
 * Requests and tokens use the generic cell rate algorithm (GCRA): each bucket keeps
 * one number, its theoretical arrival time (TAT), in epoch milliseconds. A bucket with
 * `limit` units a minute spends `60000 / limit` ms of TAT per unit and lets TAT run at
 * most 60000 ms ahead of now, so a full minute's allowance may be used at once and
 * then returns continuously. Parallel requests use leases that expire, so a crashed
 * instance cannot keep its slots.
 *
 * @since 0.1.0
 */
import { Context, type Effect } from "effect"
import type { StoreError } from "./StoreError.js"

/** What a bucket counts. @since 0.1.0 */
export type RateLimitKind = "requests" | "tokens" | "parallel"

/**
 * One limit one scope places on a request.
 *
 * @since 0.1.0
 */
export interface RateRule {
  /**
   * The counter's name, stable across instances, e.g. `team:t-1:requests`. It never
   * holds a secret: a key's bucket is named by its public `token_id`.
   */
  readonly bucket: string
  readonly kind: RateLimitKind
  /** Units a minute (requests, tokens) or leases at once (parallel). At least 1. */
  readonly limit: number
}

/** @since 0.1.0 */
export interface RateAcquire {
  /** Unique per request; names the parallel leases this request takes. */
  readonly ticketId: string
  /** In scope order; a refusal names the first rule that cannot take the request. */
  readonly rules: ReadonlyArray<RateRule>
  /** Tokens charged now to every `tokens` rule: the estimate, corrected by `complete`. */
  readonly tokens: number
  /** Epoch milliseconds, from Effect's `Clock`. */
  readonly now: number
  /** How long a parallel lease lives when nobody completes it. */
  readonly leaseMillis: number
}

/** Every rule took the request. @since 0.1.0 */
export interface RateAdmitted {
  readonly _tag: "Admitted"
  /** Per rule, in the order of `rules`: units left now (requests, tokens, free leases). */
  readonly remaining: ReadonlyArray<number>
}

/** One rule refused; nothing was counted anywhere. @since 0.1.0 */
export interface RateRefused {
  readonly _tag: "Refused"
  /** Index into `rules` of the first rule that refused. */
  readonly index: number
  /** Milliseconds until that rule could take the request. */
  readonly retryAfterMillis: number
  /**
   * Per rule, in the order of `rules`: units left now, this request not counted (it
   * was not), so a 429 can show what every limit has left, not only the refusing one.
   */
  readonly remaining: ReadonlyArray<number>
}

/** @since 0.1.0 */
export type RateDecision = RateAdmitted | RateRefused

/** @since 0.1.0 */
export interface RateComplete {
  readonly ticketId: string
  readonly rules: ReadonlyArray<RateRule>
  /**
   * Added to every `tokens` rule: the real tokens minus the estimate acquired.
   * Negative gives tokens back; `-estimate` gives all of them back.
   */
  readonly tokensDelta: number
  /**
   * The request was refused after all by a later check (its budget): its request
   * unit is given back too, so only admitted requests count against `rpm_limit`.
   */
  readonly refundRequest: boolean
  readonly now: number
}

/** @since 0.1.0 */
export interface RateLimitStoreShape {
  /** Counts the request on every rule at once, or on none of them. */
  readonly acquire: (request: RateAcquire) => Effect.Effect<RateDecision, StoreError>
  /** Corrects the tokens and frees the parallel leases of an admitted request. Idempotent for leases. */
  readonly complete: (request: RateComplete) => Effect.Effect<void, StoreError>
}

/** @since 0.1.0 */
export class RateLimitStore extends Context.Tag("teambudget/RateLimitStore")<
  RateLimitStore,
  RateLimitStoreShape
>() {}
