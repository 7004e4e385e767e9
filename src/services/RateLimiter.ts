/**
 * Rate limits (SPEC 8): `rpm_limit`, `tpm_limit` and `max_parallel_requests` of the
 * key, its user, the user's membership budget in the team, the team and its
 * organization, counted in the `RateLimitStore`.
 *
 * A request is admitted on every rule at once or on none. Its tokens are charged at
 * admission by their estimate (prompt plus the output cap), so a burst of requests can
 * never exceed a `tpm_limit`, and corrected to the real count when it completes. A
 * request with no rule on any scope (the common case) costs nothing here.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { RateLimited, StoreUnavailable } from "../domain/Errors.js"
import type { Limits } from "../domain/Limits.js"
import type { Principal } from "../domain/Principal.js"
import * as Scope from "../domain/Scope.js"
import * as VirtualKey from "../domain/VirtualKey.js"
import type { RateDecision, RateLimitKind, RateRule } from "../store/RateLimitStore.js"
import { RateLimitStore } from "../store/RateLimitStore.js"
import type { StoreError } from "../store/StoreError.js"
import { traced } from "./internal/traced.js"

/**
 * A rule with the scope it comes from, which a refusal names. A key is named by its
 * label (alias or display prefix) and counted by its public id, never by its hash.
 *
 * @since 0.1.0
 */
export interface ScopedRule extends RateRule {
  readonly scope: Scope.ScopeKind
  readonly id: string
}

/**
 * An admitted request's place in the counters, to complete or cancel it with.
 *
 * @since 0.1.0
 */
export interface RateTicket {
  readonly ticketId: string
  readonly rules: ReadonlyArray<ScopedRule>
  /** The tokens charged at admission (the estimate). */
  readonly tokens: number
  /** Per rule, in the order of `rules`: units left after this request. */
  readonly remaining: ReadonlyArray<number>
}

/** The tightest rule of one kind: its limit and what is left of it. @since 0.1.0 */
export interface Headroom {
  readonly limit: number
  readonly remaining: number
}

/** @since 0.1.0 */
export interface RateLimiterShape {
  /** The rules a principal's scopes place on its requests; empty when none has a limit. */
  readonly rulesOf: (principal: Principal) => ReadonlyArray<ScopedRule>
  /**
   * Counts the request on every rule, or fails with `RateLimited` naming the first
   * scope that refuses. `None` when no rule applies.
   */
  readonly admit: (
    principal: Principal,
    estimatedTokens: number,
    ticketId: string
  ) => Effect.Effect<Option.Option<RateTicket>, RateLimited | StoreUnavailable>
  /** The request ended: its tokens become `actualTokens` and its parallel slots are freed. */
  readonly complete: (ticket: RateTicket, actualTokens: number) => Effect.Effect<void, StoreUnavailable>
  /** The request did not run after all: its request unit, tokens and slots are given back. */
  readonly cancel: (ticket: RateTicket) => Effect.Effect<void, StoreUnavailable>
}

/** @since 0.1.0 */
export class RateLimiter extends Context.Tag("teambudget/RateLimiter")<RateLimiter, RateLimiterShape>() {}

/** @since 0.1.0 */
export interface RateLimiterOptions {
  /**
   * How long a `max_parallel_requests` slot stays taken by a request that never
   * completes (its process died). Default 15 minutes, the default hold TTL.
   */
  readonly leaseTtl?: Duration.DurationInput
}

const DEFAULT_LEASE_TTL = Duration.minutes(15)

const KINDS: ReadonlyArray<readonly [RateLimitKind, (limits: Limits) => Option.Option<number>]> = [
  ["requests", (limits) => limits.rpmLimit],
  ["tokens", (limits) => limits.tpmLimit],
  ["parallel", (limits) => limits.maxParallelRequests]
]

const addRules = (
  rules: Array<ScopedRule>,
  scope: Scope.ScopeKind,
  id: string,
  counter: string,
  limits: Limits
): void => {
  for (const [kind, limitOf] of KINDS) {
    const limit = limitOf(limits)
    if (Option.isSome(limit))
      rules.push({ bucket: `${counter}:${kind}`, kind, limit: limit.value, scope, id })
  }
}

const buildRules = (principal: Principal): ReadonlyArray<ScopedRule> => {
  const { key, user, membership, team, organization } = principal
  const rules: Array<ScopedRule> = []
  addRules(rules, "key", VirtualKey.label(key), `key:${key.keyId}`, key.limits)
  if (Option.isSome(user)) {
    const { userId, limits } = user.value
    addRules(rules, "user", userId, Scope.key({ kind: "user", id: userId }), limits)
  }
  if (Option.isSome(membership) && Option.isSome(membership.value.budget)) {
    const ref = {
      kind: "membership",
      teamId: membership.value.teamId,
      userId: membership.value.userId
    } as const
    addRules(rules, "membership", Scope.displayId(ref), Scope.key(ref), membership.value.budget.value.limits)
  }
  if (Option.isSome(team)) {
    const { teamId, limits } = team.value
    addRules(rules, "team", teamId, Scope.key({ kind: "team", id: teamId }), limits)
  }
  if (Option.isSome(organization)) {
    const { organizationId, limits } = organization.value
    addRules(
      rules,
      "organization",
      organizationId,
      Scope.key({ kind: "organization", id: organizationId }),
      limits
    )
  }
  return rules
}

// KeyAuth hands out the same cached principal object until an admin write, so the rules
// are built once per principal rather than once per request.
const ruleCache = new WeakMap<Principal, ReadonlyArray<ScopedRule>>()

/**
 * The rules of a principal, in scope order and, within a scope, requests, tokens,
 * parallel.
 *
 * @example
 * const rules = rulesOf(principal) // [{ bucket: "team:eng:requests", kind: "requests", limit: 60, scope: "team", id: "eng" }]
 * @since 0.1.0
 */
export const rulesOf = (principal: Principal): ReadonlyArray<ScopedRule> => {
  const cached = ruleCache.get(principal)
  if (cached !== undefined) return cached
  const rules = buildRules(principal)
  ruleCache.set(principal, rules)
  return rules
}

/** Of the rules of `kind`, the one with the fewest units left. */
const tightest = (
  rules: ReadonlyArray<RateRule>,
  remaining: ReadonlyArray<number>,
  kind: RateLimitKind
): Headroom | undefined => {
  let least: Headroom | undefined
  rules.forEach((rule, index) => {
    const left = remaining[index] ?? 0
    if (rule.kind === kind && (least === undefined || left < least.remaining)) {
      least = { limit: rule.limit, remaining: left }
    }
  })
  return least
}

/**
 * The tightest rule of a kind on an admitted request: the one with the fewest units
 * left. `None` when no rule of that kind applies.
 *
 * @example
 * const requests = headroom(ticket, "requests") // Option.some({ limit: 60, remaining: 59 })
 * @since 0.1.0
 */
export const headroom = (ticket: RateTicket, kind: RateLimitKind): Option.Option<Headroom> =>
  Option.fromNullable(tightest(ticket.rules, ticket.remaining, kind))

const smallestLimit = (rules: ReadonlyArray<ScopedRule>, kind: RateLimitKind): number | undefined =>
  rules.reduce<number | undefined>(
    (least, rule) => (rule.kind === kind && (least === undefined || rule.limit < least) ? rule.limit : least),
    undefined
  )

/** What the `x-ratelimit-*` headers of a 429 show. */
interface Shown {
  readonly limitRequests?: number
  readonly remainingRequests?: number
  readonly limitTokens?: number
  readonly remainingTokens?: number
}

/** Per kind, the rule with the fewest units left before the request, as the store reported them. */
const shownByStore = (rules: ReadonlyArray<ScopedRule>, remaining: ReadonlyArray<number>): Shown => {
  const requests = tightest(rules, remaining, "requests")
  const tokens = tightest(rules, remaining, "tokens")
  return {
    ...(requests === undefined
      ? {}
      : { limitRequests: requests.limit, remainingRequests: requests.remaining }),
    ...(tokens === undefined ? {} : { limitTokens: tokens.limit, remainingTokens: tokens.remaining })
  }
}

/**
 * A limit of 0 refuses before the store is asked: its kind has nothing left, and of the
 * other kind only the smallest limit is known.
 */
const shownClosed = (rules: ReadonlyArray<ScopedRule>, closed: ScopedRule): Shown => {
  const limitRequests = smallestLimit(rules, "requests")
  const limitTokens = smallestLimit(rules, "tokens")
  return {
    ...(limitRequests === undefined ? {} : { limitRequests }),
    ...(closed.kind === "requests" ? { remainingRequests: 0 } : {}),
    ...(limitTokens === undefined ? {} : { limitTokens }),
    ...(closed.kind === "tokens" ? { remainingTokens: 0 } : {})
  }
}

/** The refusal of `rule`: the scope it names, how long to wait, and the headers' figures. */
const refusal = (rule: ScopedRule, retryAfterMillis: number, tokens: number, shown: Shown): RateLimited =>
  new RateLimited({
    scope: rule.scope,
    id: rule.id,
    limitType: rule.kind === "parallel" ? "parallel_requests" : rule.kind,
    limit: rule.limit,
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMillis / 1000)),
    ...shown,
    ...(rule.kind === "tokens" && tokens > rule.limit ? { requestedTokens: tokens } : {})
  })

const RATE_STORE = "rate-limit store"

const unavailable =
  (operation: string) =>
  (error: StoreError): StoreUnavailable =>
    error._tag === "StoreUnavailable" && error.operation.startsWith(RATE_STORE)
      ? error
      : new StoreUnavailable({
          operation: `${RATE_STORE}: ${operation}`,
          cause: error
        })

const noTicket = Effect.succeed(Option.none<RateTicket>())

/**
 * Builds the limiter over the `RateLimitStore`.
 *
 * @example
 * const limiter = yield* RateLimiter
 * const ticket = yield* limiter.admit(principal, 1200, requestId)
 * // ... call the model ...
 * if (Option.isSome(ticket)) yield* limiter.complete(ticket.value, 950)
 * @since 0.1.0
 */
export const make = (
  options: RateLimiterOptions = {}
): Effect.Effect<RateLimiterShape, never, RateLimitStore> =>
  Effect.map(RateLimitStore, (store) => {
    const leaseMillis = Duration.toMillis(Duration.decode(options.leaseTtl ?? DEFAULT_LEASE_TTL))
    const toAcquireError = unavailable("acquire")
    const toCompleteError = unavailable("complete")

    const decide = (
      rules: ReadonlyArray<ScopedRule>,
      tokens: number,
      ticketId: string,
      decision: RateDecision
    ): Effect.Effect<Option.Option<RateTicket>, RateLimited> => {
      if (decision._tag === "Admitted") {
        return Effect.succeed(Option.some({ ticketId, rules, tokens, remaining: decision.remaining }))
      }
      const rule = rules[decision.index]
      return rule === undefined
        ? Effect.die(new Error(`the rate-limit store refused an unknown rule ${decision.index}`))
        : Effect.fail(
            refusal(rule, decision.retryAfterMillis, tokens, shownByStore(rules, decision.remaining))
          )
    }

    const acquire = traced(
      "RateLimiter.admit",
      (
        rules: ReadonlyArray<ScopedRule>,
        estimatedTokens: number,
        ticketId: string
      ): Effect.Effect<Option.Option<RateTicket>, RateLimited | StoreUnavailable> => {
        // A limit of 0 lets nothing through; the store's arithmetic needs at least 1.
        const closed = rules.find((rule) => rule.limit === 0)
        if (closed !== undefined) {
          return Effect.fail(refusal(closed, 60_000, estimatedTokens, shownClosed(rules, closed)))
        }
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          store.acquire({ ticketId, rules, tokens: estimatedTokens, now, leaseMillis }).pipe(
            Effect.mapError(toAcquireError),
            Effect.flatMap((decision) => decide(rules, estimatedTokens, ticketId, decision))
          )
        )
      }
    )

    // Checked before any span or Effect is made: most requests have no rule at all.
    const admit = (
      principal: Principal,
      estimatedTokens: number,
      ticketId: string
    ): Effect.Effect<Option.Option<RateTicket>, RateLimited | StoreUnavailable> => {
      const rules = rulesOf(principal)
      return rules.length === 0 ? noTicket : acquire(rules, estimatedTokens, ticketId)
    }

    const finish = (ticket: RateTicket, tokensDelta: number, refundRequest: boolean) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store
          .complete({ ticketId: ticket.ticketId, rules: ticket.rules, tokensDelta, refundRequest, now })
          .pipe(Effect.mapError(toCompleteError))
      )

    // Requests-only rules need no completion: the request unit stays counted.
    const needsCompletion = (ticket: RateTicket, tokensDelta: number): boolean =>
      ticket.rules.some((rule) => rule.kind === "parallel" || (rule.kind === "tokens" && tokensDelta !== 0))

    const complete = traced(
      "RateLimiter.complete",
      (ticket: RateTicket, actualTokens: number): Effect.Effect<void, StoreUnavailable> => {
        const delta = actualTokens - ticket.tokens
        return needsCompletion(ticket, delta) ? finish(ticket, delta, false) : Effect.void
      }
    )

    const cancel = traced("RateLimiter.cancel", (ticket: RateTicket): Effect.Effect<void, StoreUnavailable> =>
      finish(ticket, -ticket.tokens, true)
    )

    return RateLimiter.of({ rulesOf, admit, complete, cancel })
  })

/**
 * The limiter over the store's `RateLimitStore`.
 *
 * @example
 * import { Layer } from "effect"
 * import { MemoryStore, RateLimiter } from "teambudget"
 *
 * const limiter = RateLimiter.layer({ leaseTtl: "5 minutes" }).pipe(Layer.provide(MemoryStore.layer()))
 * @since 0.1.0
 */
export const layer = (options: RateLimiterOptions = {}): Layer.Layer<RateLimiter, never, RateLimitStore> =>
  Layer.effect(RateLimiter, make(options))
