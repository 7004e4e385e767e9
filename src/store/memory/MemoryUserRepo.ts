/**
 * Users in the memory store.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import type { UserId } from "../../domain/Ids.js"
import type { UserDraft, UserPatch, UserRepoShape } from "../UserRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { toUser, userKey } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import type { MemoryState, UserRow } from "./MemoryState.js"

/** @since 0.1.0 */
export const make = (state: MemoryState): UserRepoShape => ({
  find: Effect.fn("UserRepo.find")(function* (userId: UserId) {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    const row = state.users.get(userId)
    return row === undefined ? Option.none() : Option.some(toUser(state, row, now))
  }),

  insert: Effect.fn("UserRepo.insert")(function* (draft: UserDraft) {
    const now = yield* Clock.currentTimeMillis
    if (state.users.has(draft.userId)) return yield* new AlreadyExists({ entity: "user", id: draft.userId })
    const row: UserRow = { ...draft, createdAt: DateTime.unsafeMake(now) }
    state.users.set(row.userId, row)
    openScope(state, userKey(row.userId), row.limits, now)
    return toUser(state, row, now)
  }),

  update: Effect.fn("UserRepo.update")(function* (userId: UserId, patch: UserPatch) {
    const now = yield* Clock.currentTimeMillis
    const row = state.users.get(userId)
    if (row === undefined) return yield* new NotFound({ entity: "user", id: userId })
    const next: UserRow = {
      ...row,
      userEmail: patch.userEmail ?? row.userEmail,
      userRole: patch.userRole ?? row.userRole,
      limits: patchLimits(state, userKey(userId), row.limits, patch.limits, now),
      models: patch.models ?? row.models,
      blocked: patch.blocked ?? row.blocked,
      metadata: patch.metadata ?? row.metadata
    }
    state.users.set(userId, next)
    tick(state, now)
    return toUser(state, next, now)
  })
})
