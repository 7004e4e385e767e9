/**
 * Virtual keys in the memory store, by the hash of their token and by their public id.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import type { KeyHash, KeyId, TeamId, UserId } from "../../domain/Ids.js"
import type { KeyDraft, KeyPatch, KeyRepoShape } from "../KeyRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { keyKey, toKey } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import type { KeyRow, MemoryState } from "./MemoryState.js"

/** A key is named by its hash only here; errors must never show it. */
const UNKNOWN_KEY = "with this token"

/**
 * Removes a key with its counter.
 *
 * @since 0.1.0
 */
export const removeKey = (state: MemoryState, row: KeyRow): void => {
  state.keys.delete(row.hash)
  state.keyHashes.delete(row.keyId)
  state.counters.delete(keyKey(row.hash))
}

/** @since 0.1.0 */
export const make = (state: MemoryState): KeyRepoShape => {
  const found = (row: KeyRow | undefined, now: number) => {
    if (row === undefined) return Option.none()
    tick(state, now)
    return Option.some(toKey(state, row, now))
  }

  const list = (keep: (row: KeyRow) => boolean, now: number) => {
    tick(state, now)
    const keys = []
    for (const row of state.keys.values()) if (keep(row)) keys.push(toKey(state, row, now))
    return keys
  }

  return {
    find: Effect.fn("KeyRepo.find")(function* (hash: KeyHash) {
      const now = yield* Clock.currentTimeMillis
      return found(state.keys.get(hash), now)
    }),

    findById: Effect.fn("KeyRepo.findById")(function* (keyId: KeyId) {
      const now = yield* Clock.currentTimeMillis
      const hash = state.keyHashes.get(keyId)
      return found(hash === undefined ? undefined : state.keys.get(hash), now)
    }),

    listByTeam: Effect.fn("KeyRepo.listByTeam")(function* (teamId: TeamId) {
      const now = yield* Clock.currentTimeMillis
      return list((row) => Option.contains(row.teamId, teamId), now)
    }),

    listByUser: Effect.fn("KeyRepo.listByUser")(function* (userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return list((row) => Option.contains(row.userId, userId), now)
    }),

    listExpiring: Effect.fn("KeyRepo.listExpiring")(function* (after: DateTime.Utc, until: DateTime.Utc) {
      const now = yield* Clock.currentTimeMillis
      const within = (row: KeyRow) =>
        Option.isSome(row.expires) &&
        row.expires.value.epochMillis > after.epochMillis &&
        row.expires.value.epochMillis <= until.epochMillis
      return list(within, now).sort(
        (a, b) =>
          Option.getOrElse(Option.map(a.expires, DateTime.toEpochMillis), () => 0) -
          Option.getOrElse(Option.map(b.expires, DateTime.toEpochMillis), () => 0)
      )
    }),

    insert: Effect.fn("KeyRepo.insert")(function* (draft: KeyDraft) {
      const now = yield* Clock.currentTimeMillis
      if (state.keys.has(draft.hash) || state.keyHashes.has(draft.keyId)) {
        return yield* new AlreadyExists({ entity: "key", id: draft.keyId })
      }
      const row: KeyRow = { ...draft, createdAt: DateTime.unsafeMake(now) }
      state.keys.set(row.hash, row)
      state.keyHashes.set(row.keyId, row.hash)
      openScope(state, keyKey(row.hash), row.limits, now)
      return toKey(state, row, now)
    }),

    update: Effect.fn("KeyRepo.update")(function* (hash: KeyHash, patch: KeyPatch) {
      const now = yield* Clock.currentTimeMillis
      const row = state.keys.get(hash)
      if (row === undefined) return yield* new NotFound({ entity: "key", id: UNKNOWN_KEY })
      const next: KeyRow = {
        ...row,
        keyAlias: patch.keyAlias ?? row.keyAlias,
        userId: patch.userId ?? row.userId,
        teamId: patch.teamId ?? row.teamId,
        limits: patchLimits(state, keyKey(hash), row.limits, patch.limits, now),
        models: patch.models ?? row.models,
        expires: patch.expires ?? row.expires,
        blocked: patch.blocked ?? row.blocked,
        metadata: patch.metadata ?? row.metadata
      }
      state.keys.set(hash, next)
      tick(state, now)
      return toKey(state, next, now)
    }),

    delete: Effect.fn("KeyRepo.delete")(function* (hashes: ReadonlyArray<KeyHash>) {
      const rows: Array<KeyRow> = []
      for (const hash of hashes) {
        const row = state.keys.get(hash)
        if (row === undefined) return yield* new NotFound({ entity: "key", id: UNKNOWN_KEY })
        rows.push(row)
      }
      for (const row of rows) removeKey(state, row)
    })
  }
}
