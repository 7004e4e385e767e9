/**
 * Virtual key operations: generate, change, block, delete, read.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { type KeyRef, keyRefLabel, toLimits, toLimitsPatch } from "../../api/Fields.js"
import type { KeyBlock, KeyDelete, KeyGenerate, KeyInfo, KeyUpdate } from "../../api/KeyRequests.js"
import type { BudgetDuration } from "../../domain/BudgetDuration.js"
import * as BudgetWindow from "../../domain/BudgetWindow.js"
import { Forbidden, InvalidRequest } from "../../domain/Errors.js"
import { KeyId, type TeamId, type UserId } from "../../domain/Ids.js"
import type { Caller } from "../../domain/Principal.js"
import { displayPrefix, generateToken, hashToken } from "../../domain/Token.js"
import type { VirtualKey } from "../../domain/VirtualKey.js"
import type { KeyPatch } from "../../store/KeyRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireManager, requireWithin } from "./Policy.js"

/**
 * A key just made, with its plaintext token: the only time the token exists outside
 * the caller's hands.
 *
 * @since 0.1.0
 */
export interface GeneratedKey {
  readonly key: VirtualKey
  readonly token: string
}

const sameKey = (ref: KeyRef, key: VirtualKey): boolean =>
  ref._tag === "Token" ? ref.hash === key.hash : ref.keyId === key.keyId

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { keys, teams, users, memberships } = ports

  const resolve = (ref: KeyRef) =>
    found("key", keyRefLabel(ref))(ref._tag === "Token" ? keys.find(ref.hash) : keys.findById(ref.keyId))

  const expiry = (duration: BudgetDuration) =>
    Effect.map(Clock.currentTimeMillis, (now) => DateTime.unsafeMake(BudgetWindow.boundary(now, duration, 1)))

  /** A key's user and team must exist, and a key with both must belong to a member. */
  const requireOwners = (userId: Option.Option<UserId>, teamId: Option.Option<TeamId>) =>
    Effect.gen(function* () {
      if (Option.isSome(teamId)) yield* found("team", teamId.value)(teams.find(teamId.value))
      if (Option.isSome(userId)) yield* found("user", userId.value)(users.find(userId.value))
      if (Option.isSome(userId) && Option.isSome(teamId)) {
        const membership = yield* memberships.find(teamId.value, userId.value)
        if (Option.isNone(membership)) {
          return yield* new InvalidRequest({
            path: "user_id",
            detail: `user ${userId.value} is not a member of team ${teamId.value}`
          })
        }
      }
    })

  const keyPatch = (request: KeyUpdate) =>
    Effect.gen(function* () {
      const limits = toLimitsPatch(request)
      const expires =
        request.duration === undefined
          ? undefined
          : Option.isNone(request.duration)
            ? Option.none()
            : Option.some(yield* expiry(request.duration.value))
      const patch: KeyPatch = {
        ...(request.keyAlias === undefined ? {} : { keyAlias: request.keyAlias }),
        ...(request.userId === undefined ? {} : { userId: request.userId }),
        ...(request.teamId === undefined ? {} : { teamId: request.teamId }),
        ...(Object.keys(limits).length === 0 ? {} : { limits }),
        ...(request.models === undefined ? {} : { models: request.models }),
        ...(expires === undefined ? {} : { expires }),
        ...(request.blocked === undefined ? {} : { blocked: request.blocked }),
        ...(request.metadata === undefined ? {} : { metadata: request.metadata })
      }
      return patch
    })

  const setBlocked = (action: string, blocked: boolean) =>
    Effect.fn(blocked ? "Admin.keyBlock" : "Admin.keyUnblock")(function* (caller: Caller, request: KeyBlock) {
      const scope = yield* requireManager(caller, action)
      return yield* write(ports)(
        Effect.gen(function* () {
          const key = yield* resolve(request.key)
          yield* requireWithin(scope, action, key.teamId)
          return yield* keys.update(key.hash, { blocked })
        })
      )
    })

  return {
    /**
     * Makes a key. Its token (`sk-` and 32 random bytes) is returned once and stored
     * only as its SHA-256 hash. A team admin may make keys of its own team only.
     */
    keyGenerate: Effect.fn("Admin.keyGenerate")(function* (caller: Caller, request: KeyGenerate) {
      const scope = yield* requireManager(caller, "create keys")
      yield* requireWithin(scope, "create keys", request.teamId)
      return yield* write(ports)(
        Effect.gen(function* () {
          yield* requireOwners(request.userId, request.teamId)
          const expires = Option.isSome(request.duration)
            ? Option.some(yield* expiry(request.duration.value))
            : Option.none()
          const token = generateToken()
          const key = yield* keys.insert({
            keyId: KeyId.make(crypto.randomUUID()),
            hash: hashToken(token),
            keyAlias: request.keyAlias,
            displayPrefix: displayPrefix(token),
            userId: request.userId,
            teamId: request.teamId,
            limits: toLimits(request),
            models: request.models,
            expires,
            blocked: request.blocked,
            metadata: request.metadata
          })
          const generated: GeneratedKey = { key, token }
          return generated
        })
      )
    }),

    /**
     * Changes a key: absent fields stay, cleared fields become none. `duration` sets
     * the expiry that long from now (`null`: never expires). A team admin may change
     * keys of its team only, and may not move them to another team.
     */
    keyUpdate: Effect.fn("Admin.keyUpdate")(function* (caller: Caller, request: KeyUpdate) {
      const scope = yield* requireManager(caller, "change keys")
      if (request.teamId !== undefined) yield* requireWithin(scope, "move keys", request.teamId)
      return yield* write(ports)(
        Effect.gen(function* () {
          const key = yield* resolve(request.key)
          yield* requireWithin(scope, "change this key", key.teamId)
          if (request.userId !== undefined || request.teamId !== undefined) {
            yield* requireOwners(request.userId ?? key.userId, request.teamId ?? key.teamId)
          }
          return yield* keys.update(key.hash, yield* keyPatch(request))
        })
      )
    }),

    /** Blocks a key: it is refused from the next request on. */
    keyBlock: setBlocked("block keys", true),

    /** Unblocks a key. */
    keyUnblock: setBlocked("unblock keys", false),

    /** Deletes keys: all of them or none. Returns the keys as they were. */
    keyDelete: Effect.fn("Admin.keyDelete")(function* (caller: Caller, request: KeyDelete) {
      const scope = yield* requireManager(caller, "delete keys")
      return yield* write(ports)(
        Effect.gen(function* () {
          const named = yield* Effect.forEach(request.keys, resolve)
          const unique = [...new Map(named.map((key) => [key.hash, key])).values()]
          yield* Effect.forEach(unique, (key) => requireWithin(scope, "delete this key", key.teamId), {
            discard: true
          })
          yield* keys.delete(unique.map((key) => key.hash))
          return unique
        })
      )
    }),

    /**
     * A key's settings and spend. Without `key`, the caller's own key. Any key may read
     * itself; a team admin may read its team's keys; the master may read every key.
     */
    keyInfo: Effect.fn("Admin.keyInfo")(function* (caller: Caller, request: KeyInfo) {
      if (caller._tag === "Master") {
        if (Option.isNone(request.key)) {
          return yield* new InvalidRequest({ path: "key", detail: "is required with the master key" })
        }
        return yield* read(ports)(resolve(request.key.value))
      }
      const own = caller.principal.key
      if (Option.isNone(request.key) || sameKey(request.key.value, own)) {
        return yield* read(ports)(found("key", own.displayPrefix)(keys.findById(own.keyId)))
      }
      const scope = yield* requireManager(caller, "read other keys").pipe(
        Effect.mapError(
          () =>
            new Forbidden({ action: "read other keys", reason: "a key may read only its own information" })
        )
      )
      const ref = request.key.value
      return yield* read(ports)(
        Effect.gen(function* () {
          const key = yield* resolve(ref)
          yield* requireWithin(scope, "read this key", key.teamId)
          return key
        })
      )
    })
  }
}
