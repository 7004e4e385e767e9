/**
 * End users (customers) in the memory store. Spend is counted for an end user from
 * its first request, row or not, so limits set later see the true spend.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import type { EndUserId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import type { EndUserDraft, EndUserPatch, EndUserRepoShape } from "../EndUserRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { toEndUser } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import type { EndUserRow, MemoryState } from "./MemoryState.js"

const scopeKey = (id: EndUserId): string => Scope.key({ kind: "end_user", id })

/** @since 0.1.0 */
export const make = (state: MemoryState): EndUserRepoShape => ({
  // On the request path (inside `BudgetPolicy.authorize`'s span): no span of its own.
  find: Effect.fnUntraced(function* (id: EndUserId) {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    const row = state.endUsers.get(id)
    return row === undefined ? Option.none() : Option.some(toEndUser(state, row, now))
  }),

  insert: Effect.fn("EndUserRepo.insert")(function* (draft: EndUserDraft) {
    const now = yield* Clock.currentTimeMillis
    if (state.endUsers.has(draft.endUserId)) {
      return yield* new AlreadyExists({ entity: "end_user", id: draft.endUserId })
    }
    const row: EndUserRow = { ...draft, createdAt: DateTime.unsafeMake(now) }
    state.endUsers.set(row.endUserId, row)
    openScope(state, scopeKey(row.endUserId), row.limits, now)
    tick(state, now)
    return toEndUser(state, row, now)
  }),

  update: Effect.fn("EndUserRepo.update")(function* (id: EndUserId, patch: EndUserPatch) {
    const now = yield* Clock.currentTimeMillis
    const row = state.endUsers.get(id)
    if (row === undefined) return yield* new NotFound({ entity: "end_user", id })
    const next: EndUserRow = {
      ...row,
      limits: patchLimits(state, scopeKey(id), row.limits, patch.limits, now),
      blocked: patch.blocked ?? row.blocked
    }
    state.endUsers.set(id, next)
    tick(state, now)
    return toEndUser(state, next, now)
  })
})
