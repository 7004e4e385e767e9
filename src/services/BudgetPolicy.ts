/**
 * Decides whether a request may run and records what it cost.
 *
 * `authorize` authenticates the key, checks the model allow-lists, resolves every
 * scope of the request (SPEC 3), estimates the worst-case cost, counts the request on
 * the rate limits (SPEC 8) and places one hold on all scopes at once. `settle`
 * replaces the hold with the real cost and corrects the tokens counted; `release`
 * gives the hold (and the tokens) back when the upstream call failed.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  DateTime,
  type Duration,
  Effect,
  Layer,
  Metric,
  Option,
  type Redacted,
  Schedule,
  Schema
} from "effect"
import {
  Blocked,
  type BudgetExceeded,
  type HoldClosed,
  InvalidRequest,
  ModelNotAllowed,
  type PriceUnknown,
  type RateLimited,
  type StoreUnavailable,
  type TeamBudgetError
} from "../domain/Errors.js"
import { EndUserId, HoldId, RequestId } from "../domain/Ids.js"
import * as Money from "../domain/Money.js"
import type { Principal } from "../domain/Principal.js"
import type { ScopeRef } from "../domain/Scope.js"
import type { SpendStatus } from "../domain/SpendLog.js"
import * as VirtualKey from "../domain/VirtualKey.js"
import { EndUserRepo } from "../store/EndUserRepo.js"
import type { RateLimitStore } from "../store/RateLimitStore.js"
import { type Headroom, type Hold, type Mode, type Settlement, SpendLedger } from "../store/SpendLedger.js"
import type { StoreError } from "../store/StoreError.js"
import { BudgetEvents } from "./BudgetEvents.js"
import { type AuthError, KeyAuth } from "./KeyAuth.js"
import { timeOrderedId } from "./internal/timeOrderedId.js"
import { traced } from "./internal/traced.js"
import * as Metrics from "./Metrics.js"
import * as RateLimiter from "./RateLimiter.js"
import { Pricing, type Usage } from "./Pricing.js"

/** @since 0.1.0 */
export interface AuthorizeRequest {
  /** The bearer token, without `Bearer `. */
  readonly apiKey: string | Redacted.Redacted<string>
  readonly model: string
  /** Estimated prompt tokens (see `TokenEstimator`). */
  readonly promptTokens: number
  /** `max_completion_tokens` / `max_tokens` of the request; else the model's cap, else the configured default. */
  readonly maxOutputTokens?: number
  /** The `user` field of an OpenAI request: an end user (customer) scope. */
  readonly endUser?: string
  /** Defaults to a random id. */
  readonly requestId?: string
}

/** A request that may run, and the hold it carries. @since 0.1.0 */
export interface Admission {
  readonly requestId: RequestId
  readonly principal: Principal
  readonly model: string
  readonly endUser: Option.Option<EndUserId>
  readonly hold: Hold
  /** The worst-case cost held (what strict mode held; optimistic holds nothing). */
  readonly estimate: Money.Money
  readonly startedAt: DateTime.Utc
  /** Admitted without a hold because the store was unreachable and `failOpen` is on. */
  readonly unheld: boolean
  /** Its place in the rate limits; `None` when no scope has one (or they were skipped by `failOpen`). */
  readonly rate: Option.Option<RateLimiter.RateTicket>
}

/** @since 0.1.0 */
export type AuthorizeError =
  | AuthError
  | ModelNotAllowed
  | Blocked
  | RateLimited
  | BudgetExceeded
  | PriceUnknown
  | InvalidRequest
  | StoreError

/** @since 0.1.0 */
export type SettleError = HoldClosed | PriceUnknown | InvalidRequest | StoreError

/** @since 0.1.0 */
export interface BudgetPolicyShape {
  readonly authorize: (request: AuthorizeRequest) => Effect.Effect<Admission, AuthorizeError>
  /** Charges the real usage and writes the spend log row. */
  readonly settle: (
    admission: Admission,
    usage: Usage,
    status?: SpendStatus
  ) => Effect.Effect<Settlement, SettleError>
  /** Gives the hold back: the upstream call failed and nothing was delivered. */
  readonly release: (admission: Admission) => Effect.Effect<void, HoldClosed | StoreError>
}

/** @since 0.1.0 */
export class BudgetPolicy extends Context.Tag("teambudget/BudgetPolicy")<BudgetPolicy, BudgetPolicyShape>() {}

/** @since 0.1.0 */
export interface BudgetPolicyOptions {
  /** `strict` (default) holds the worst case before the call; `optimistic` checks `spend < max` and charges after. */
  readonly mode?: Mode
  /**
   * When the store is unreachable, admit requests without a hold instead of failing
   * with `StoreUnavailable` (503). Off by default: fail closed.
   */
  readonly failOpen?: boolean
  /** Output tokens assumed when neither the request nor the model gives a cap. Default 4096. */
  readonly defaultMaxOutputTokens?: number
  /** Options of the rate limiter that {@link layer} builds. */
  readonly rateLimiter?: RateLimiter.RateLimiterOptions
  /**
   * How long a settlement keeps being tried while the store is unreachable, so a
   * request that was served is still charged once the store is back. Default 30 seconds.
   */
  readonly settleRetryFor?: Duration.DurationInput
}

/**
 * The model must be allowed by every list that is not empty: the key's, the team's
 * and the organization's (and the user's, for a key without a team).
 */
const refuseModel = (principal: Principal, model: string): ModelNotAllowed | undefined => {
  const { key, team, organization, user } = principal
  const refuse = (scope: "key" | "team" | "organization" | "user", id: string) =>
    new ModelNotAllowed({ model, scope, id })
  if (key.models.length > 0 && !key.models.includes(model)) return refuse("key", VirtualKey.label(key))
  if (Option.isSome(team)) {
    const { models, teamId } = team.value
    if (models.length > 0 && !models.includes(model)) return refuse("team", teamId)
  } else if (Option.isSome(user)) {
    const { models, userId } = user.value
    if (models.length > 0 && !models.includes(model)) return refuse("user", userId)
  }
  if (Option.isSome(organization)) {
    const { models, organizationId } = organization.value
    if (models.length > 0 && !models.includes(model)) return refuse("organization", organizationId)
  }
  return undefined
}

/** Every scope of the request that exists, in report order (SPEC 3). */
const scopesOf = (principal: Principal, endUser: Option.Option<EndUserId>): ReadonlyArray<ScopeRef> => {
  const { key, user, membership, team, organization } = principal
  const scopes: Array<ScopeRef> = [{ kind: "key", id: key.hash, label: VirtualKey.label(key) }]
  if (Option.isSome(user)) scopes.push({ kind: "user", id: user.value.userId })
  if (Option.isSome(membership)) {
    scopes.push({ kind: "membership", teamId: membership.value.teamId, userId: membership.value.userId })
  }
  if (Option.isSome(team)) scopes.push({ kind: "team", id: team.value.teamId })
  if (Option.isSome(organization))
    scopes.push({ kind: "organization", id: organization.value.organizationId })
  if (Option.isSome(endUser)) scopes.push({ kind: "end_user", id: endUser.value })
  scopes.push({ kind: "global" })
  return scopes
}

const decodeEndUser = Schema.decodeUnknownOption(EndUserId)
const decodeRequestId = Schema.decodeUnknownEither(RequestId)

/**
 * The request's id and its hold's. A hold id is always fresh, so a caller that reuses
 * a request id cannot touch another request's hold; a generated request id is fresh
 * already and serves as both.
 */
interface Ids {
  readonly requestId: RequestId
  readonly holdId: HoldId
}

// Time-ordered, so the stores' hold and spend log indexes grow at their end.
const freshIds = (now: number): Ids => {
  const id = timeOrderedId(now)
  return {
    requestId: RequestId.make(id, { disableValidation: true }),
    holdId: HoldId.make(id, { disableValidation: true })
  }
}

const refusalCounter = (error: TeamBudgetError) =>
  Metrics.refusals.pipe(
    Metric.tagged("reason", error._tag),
    Metric.tagged("scope", "scope" in error ? error.scope : "none")
  )

const resolveIds = (raw: string | undefined, now: number): Ids | InvalidRequest => {
  if (raw === undefined) return freshIds(now)
  const decoded = decodeRequestId(raw)
  return decoded._tag === "Right"
    ? { requestId: decoded.right, holdId: freshIds(now).holdId }
    : new InvalidRequest({ path: "request_id", detail: "must be 1 to 256 printable characters" })
}

// The checks below return their refusal instead of an Effect: they run on every request, and
// a plain value costs nothing to pass on.
const invalidTokens = (value: number, path: string): InvalidRequest | undefined =>
  Number.isSafeInteger(value) && value >= 0
    ? undefined
    : new InvalidRequest({ path, detail: "must be a non-negative integer" })

/**
 * Builds the policy from its services.
 *
 * @example
 * const policy = yield* BudgetPolicy
 * const admission = yield* policy.authorize({ apiKey, model: "gpt-4o-mini", promptTokens: 12, maxOutputTokens: 256 })
 * // ... call the model ...
 * yield* policy.settle(admission, { promptTokens: 12, completionTokens: 80 })
 * @since 0.1.0
 */
export const make = (options: BudgetPolicyOptions = {}) =>
  Effect.gen(function* () {
    const auth = yield* KeyAuth
    const ledger = yield* SpendLedger
    const pricing = yield* Pricing
    const endUsers = yield* EndUserRepo
    // Budget events, when the deployment has them: told about each settlement, never waited for.
    const events = yield* Effect.serviceOption(BudgetEvents)
    const limiter = yield* RateLimiter.RateLimiter
    const mode = options.mode ?? "strict"
    const failOpen = options.failOpen ?? false
    const defaultMaxOutput = options.defaultMaxOutputTokens ?? 4096
    // The answer was delivered, so its cost is owed: a store outage delays the charge, it
    // must not drop it. A retry after a commit whose reply was lost finds the hold closed
    // (HoldClosed) instead of charging twice.
    const settleRetry = {
      schedule: Schedule.exponential("50 millis").pipe(
        Schedule.union(Schedule.spaced("1 second")),
        Schedule.upTo(options.settleRetryFor ?? "30 seconds")
      ),
      while: (error: HoldClosed | StoreError) => error._tag === "StoreUnavailable"
    }

    const noEndUser = Effect.succeed(Option.none<EndUserId>())
    const resolveEndUser = (raw: string | undefined) =>
      raw === undefined
        ? noEndUser
        : Effect.gen(function* () {
            const id = decodeEndUser(raw)
            if (Option.isNone(id)) {
              return yield* new InvalidRequest({
                path: "user",
                detail: "must be 1 to 256 printable characters"
              })
            }
            const row = yield* endUsers.find(id.value)
            if (Option.isSome(row) && row.value.blocked) {
              return yield* new Blocked({ scope: "end_user", id: id.value })
            }
            return id
          })

    const placeHold = (holdId: HoldId, scopes: ReadonlyArray<ScopeRef>, amount: Money.Money) =>
      ledger.hold({ holdId, scopes, amount, mode }).pipe(
        Effect.map((hold) => ({ hold, unheld: false })),
        Effect.catchIf(
          (error): error is StoreUnavailable => failOpen && error._tag === "StoreUnavailable",
          () =>
            Effect.map(Clock.currentTimeMillis, (now) => ({
              hold: {
                holdId,
                scopes,
                amount: Money.zero,
                expiresAt: DateTime.unsafeMake(now),
                tightest: Option.none<Headroom>()
              },
              unheld: true
            }))
        )
      )

    // With `failOpen`, an unreachable limiter store admits the request uncounted, as the
    // budget store does.
    const noRate = Effect.succeed(Option.none<RateLimiter.RateTicket>())
    const admitRate = (principal: Principal, tokens: number, ticketId: string) =>
      failOpen && limiter.rulesOf(principal).length > 0
        ? Effect.catchTag(limiter.admit(principal, tokens, ticketId), "StoreUnavailable", () => noRate)
        : limiter.admit(principal, tokens, ticketId)

    // The request is over, so a store that cannot take the correction only delays it:
    // the tokens stay at their estimate and the lease runs out by itself.
    const finishRate = (
      rate: Option.Option<RateLimiter.RateTicket>,
      finish: (ticket: RateLimiter.RateTicket) => Effect.Effect<void, StoreUnavailable>
    ): Effect.Effect<void> =>
      Option.isNone(rate)
        ? Effect.void
        : Effect.catchAll(finish(rate.value), (error) =>
            Effect.logWarning("teambudget: completing a rate-limit ticket failed").pipe(
              Effect.annotateLogs({ ticketId: rate.value.ticketId, error: error.message })
            )
          )

    const authorize = traced(
      "BudgetPolicy.authorize",
      Effect.fnUntraced(
        function* (request: AuthorizeRequest) {
          const { promptTokens } = request
          const badPrompt = invalidTokens(promptTokens, "prompt_tokens")
          if (badPrompt !== undefined) return yield* badPrompt
          const principal = yield* auth.authenticate(request.apiKey)
          const modelRefusal = refuseModel(principal, request.model)
          if (modelRefusal !== undefined) return yield* modelRefusal
          const endUser = yield* resolveEndUser(request.endUser)
          const price = yield* pricing.price(request.model)
          const maxOutput =
            request.maxOutputTokens ?? Option.getOrElse(price.maxOutputTokens, () => defaultMaxOutput)
          const badOutput = invalidTokens(maxOutput, "max_tokens")
          if (badOutput !== undefined) return yield* badOutput
          const estimate = yield* pricing.cost(request.model, { promptTokens, completionTokens: maxOutput })
          const now = yield* Clock.currentTimeMillis
          const ids = resolveIds(request.requestId, now)
          if (ids instanceof InvalidRequest) return yield* ids
          const { requestId, holdId } = ids
          const scopes = scopesOf(principal, endUser)
          const startedAt = DateTime.unsafeMake(now)
          const rate = yield* admitRate(principal, promptTokens + maxOutput, holdId)
          // A request the budget refuses never ran: it gives back its rate-limit units.
          const placing = placeHold(holdId, scopes, estimate)
          const { hold, unheld } = yield* Option.isNone(rate)
            ? placing
            : Effect.onError(placing, () => finishRate(rate, limiter.cancel))
          yield* Metric.increment(Metrics.admissions)
          if (!unheld) yield* Metric.increment(Metrics.holdsOpen)
          const admission: Admission = {
            requestId,
            principal,
            model: request.model,
            endUser,
            hold,
            estimate,
            startedAt,
            unheld,
            rate
          }
          return admission
        },
        Effect.tapError((error) => Metric.increment(refusalCounter(error)))
      )
    )

    const settle = traced(
      "BudgetPolicy.settle",
      Effect.fnUntraced(function* (admission: Admission, usage: Usage, status: SpendStatus = "success") {
        const cost = yield* pricing.cost(admission.model, usage)
        const { principal } = admission
        const step = ledger.settle(admission.hold, cost, {
          requestId: admission.requestId,
          keyId: principal.key.keyId,
          keyHash: principal.key.hash,
          keyLabel: VirtualKey.label(principal.key),
          userId: principal.key.userId,
          teamId: principal.key.teamId,
          organizationId: Option.flatMap(principal.team, (team) => team.organizationId),
          endUser: admission.endUser,
          model: admission.model,
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          startedAt: admission.startedAt,
          status
        })
        const settlement = yield* Effect.catchTag(step, "StoreUnavailable", () =>
          Effect.retry(step, settleRetry)
        )
        if (!admission.unheld) yield* Metric.incrementBy(Metrics.holdsOpen, -1)
        yield* finishRate(admission.rate, (ticket) =>
          limiter.complete(ticket, usage.promptTokens + usage.completionTokens)
        )
        yield* Metric.incrementBy(Metrics.spendNanos, settlement.cost)
        if (Option.isSome(events)) yield* events.value.observe(admission, settlement.cost)
        return settlement
      })
    )

    const release = traced(
      "BudgetPolicy.release",
      Effect.fnUntraced(function* (admission: Admission) {
        // The request still counts; its tokens are given back and its slot freed.
        const finish = finishRate(admission.rate, (ticket) => limiter.complete(ticket, 0))
        if (admission.unheld) return yield* finish
        yield* ledger.release(admission.hold)
        yield* Metric.incrementBy(Metrics.holdsOpen, -1)
        yield* finish
      })
    )

    return BudgetPolicy.of({ authorize, settle, release })
  })

/**
 * The policy over `KeyAuth`, `SpendLedger`, `Pricing`, `EndUserRepo` and the store's
 * `RateLimitStore`, with its own `RateLimiter` over that store. To use another
 * limiter, provide `Layer.effect(BudgetPolicy, make(options))` with it.
 *
 * @example
 * import { Layer } from "effect"
 * import { BudgetPolicy, KeyAuth } from "teambudget"
 *
 * const policy = BudgetPolicy.layer({ mode: "strict", rateLimiter: { leaseTtl: "5 minutes" } }).pipe(
 *   Layer.provideMerge(KeyAuth.layer())
 * )
 * @since 0.1.0
 */
export const layer = (
  options: BudgetPolicyOptions = {}
): Layer.Layer<
  BudgetPolicy | RateLimiter.RateLimiter,
  never,
  KeyAuth | SpendLedger | Pricing | EndUserRepo | RateLimitStore
> =>
  Layer.effect(BudgetPolicy, make(options)).pipe(Layer.provideMerge(RateLimiter.layer(options.rateLimiter)))
