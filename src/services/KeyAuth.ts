/**
 * Bearer token to principal. Tokens are hashed (SHA-256) before any lookup; the
 * principal is cached by hash in a bounded cache with a TTL that every admin write
 * clears (through {@link Invalidation}). Expiry and blocked flags are checked on every
 * request, against the clock, after the cache.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  DateTime,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  Queue,
  Redacted
} from "effect"
import { AuthenticationFailed, Blocked, KeyExpired } from "../domain/Errors.js"
import type { KeyHash } from "../domain/Ids.js"
import type { Principal } from "../domain/Principal.js"
import { hashToken } from "../domain/Token.js"
import * as VirtualKey from "../domain/VirtualKey.js"
import { KeyRepo } from "../store/KeyRepo.js"
import { MembershipRepo } from "../store/MembershipRepo.js"
import { OrganizationRepo } from "../store/OrganizationRepo.js"
import type { StoreError } from "../store/StoreError.js"
import { TeamRepo } from "../store/TeamRepo.js"
import { UserRepo } from "../store/UserRepo.js"
import { Invalidation } from "./Invalidation.js"
import { traced } from "./internal/traced.js"
import * as TtlCache from "./internal/TtlCache.js"
import * as Metrics from "./Metrics.js"

/** @since 0.1.0 */
export type AuthError = AuthenticationFailed | KeyExpired | Blocked | StoreError

/** @since 0.1.0 */
export interface KeyAuthShape {
  /**
   * Resolves a bearer token (without the `Bearer ` prefix) to its principal, or fails
   * with the reason it may not be used.
   */
  readonly authenticate: (token: string | Redacted.Redacted<string>) => Effect.Effect<Principal, AuthError>
  /** Drops every cached principal. Admin writes do this through {@link Invalidation}. */
  readonly invalidateAll: Effect.Effect<void>
}

/** @since 0.1.0 */
export class KeyAuth extends Context.Tag("teambudget/KeyAuth")<KeyAuth, KeyAuthShape>() {}

/** @since 0.1.0 */
export interface KeyAuthOptions {
  /** Principals kept at most. Default 10,000. */
  readonly cacheCapacity?: number
  /** How long a principal stays cached without an admin write. Default 60 seconds. */
  readonly cacheTtl?: Duration.DurationInput
  /** How long an unknown key stays known as unknown. Default 5 seconds. */
  readonly negativeTtl?: Duration.DurationInput
}

const loadPrincipal = Effect.fnUntraced(function* (hash: KeyHash) {
  const keys = yield* KeyRepo
  const users = yield* UserRepo
  const teams = yield* TeamRepo
  const memberships = yield* MembershipRepo
  const organizations = yield* OrganizationRepo
  const key = yield* keys.find(hash)
  if (Option.isNone(key)) return yield* new AuthenticationFailed({ reason: "unknown" })
  const { userId, teamId } = key.value
  const [user, team, membership] = yield* Effect.all(
    [
      Option.match(userId, { onNone: () => Effect.succeedNone, onSome: users.find }),
      Option.match(teamId, { onNone: () => Effect.succeedNone, onSome: teams.find }),
      Option.isSome(userId) && Option.isSome(teamId)
        ? memberships.find(teamId.value, userId.value)
        : Effect.succeedNone
    ],
    { concurrency: "unbounded" }
  )
  const organization = yield* Option.match(
    Option.flatMap(team, (t) => t.organizationId),
    { onNone: () => Effect.succeedNone, onSome: organizations.find }
  )
  const principal: Principal = { key: key.value, user, team, membership, organization }
  return principal
})

/** Expired or blocked: checked on every request, never cached. */
const checkUsable = (principal: Principal, now: number): Effect.Effect<Principal, KeyExpired | Blocked> => {
  const { key, user, team, organization } = principal
  if (Option.isSome(key.expires) && DateTime.toEpochMillis(key.expires.value) <= now) {
    return Effect.fail(new KeyExpired({ keyLabel: VirtualKey.label(key), expiredAt: key.expires.value }))
  }
  if (key.blocked) return Effect.fail(new Blocked({ scope: "key", id: VirtualKey.label(key) }))
  if (Option.isSome(user) && user.value.blocked) {
    return Effect.fail(new Blocked({ scope: "user", id: user.value.userId }))
  }
  if (Option.isSome(team) && team.value.blocked) {
    return Effect.fail(new Blocked({ scope: "team", id: team.value.teamId }))
  }
  if (Option.isSome(organization) && organization.value.blocked) {
    return Effect.fail(new Blocked({ scope: "organization", id: organization.value.organizationId }))
  }
  return Effect.succeed(principal)
}

/**
 * Builds the service from the repositories and the invalidation channel.
 *
 * @example
 * const auth = yield* KeyAuth
 * const principal = yield* auth.authenticate(bearerToken)
 * @since 0.1.0
 */
export const make = (options: KeyAuthOptions = {}) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<KeyRepo | UserRepo | TeamRepo | MembershipRepo | OrganizationRepo>()
    const positiveMillis = Duration.toMillis(Duration.decode(options.cacheTtl ?? "60 seconds"))
    const negativeMillis = Duration.toMillis(Duration.decode(options.negativeTtl ?? "5 seconds"))
    const cache = TtlCache.make<KeyHash, Principal, AuthenticationFailed | StoreError>({
      capacity: options.cacheCapacity ?? 10_000,
      lookup: (hash) =>
        Effect.provide(loadPrincipal(hash), context).pipe(
          Effect.zipLeft(Metric.increment(Metrics.keyCacheMisses))
        ),
      // Store failures are never kept: the next request asks the store again.
      timeToLive: (exit) =>
        Exit.isSuccess(exit)
          ? positiveMillis
          : Option.match(Cause.failureOption(exit.cause), {
              onNone: () => 0,
              onSome: (error) => (error._tag === "AuthenticationFailed" ? negativeMillis : 0)
            })
    })

    const invalidation = yield* Invalidation
    const changes = yield* invalidation.subscribe
    yield* Queue.take(changes).pipe(Effect.zipRight(cache.clear), Effect.forever, Effect.forkScoped)

    const authenticate = traced(
      "KeyAuth.authenticate",
      // Plain combinators rather than a generator: this runs on every request.
      (token: string | Redacted.Redacted<string>): Effect.Effect<Principal, AuthError> => {
        const raw = Redacted.isRedacted(token) ? Redacted.value(token) : token
        if (raw.length === 0) return Effect.fail(new AuthenticationFailed({ reason: "missing" }))
        return Effect.flatMap(cache.get(hashToken(raw)), (principal) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => checkUsable(principal, now))
        )
      }
    )

    return KeyAuth.of({ authenticate, invalidateAll: cache.clear })
  })

/**
 * The key authenticator over the store's repositories.
 *
 * @since 0.1.0
 */
export const layer = (
  options: KeyAuthOptions = {}
): Layer.Layer<
  KeyAuth,
  never,
  KeyRepo | UserRepo | TeamRepo | MembershipRepo | OrganizationRepo | Invalidation
> => Layer.scoped(KeyAuth, make(options))
