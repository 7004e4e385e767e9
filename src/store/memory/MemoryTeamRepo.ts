/**
 * Teams in the memory store.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import type { TeamId } from "../../domain/Ids.js"
import type { TeamDraft, TeamPatch, TeamRepoShape } from "../TeamRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { teamKey, toTeam } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import { removeKey } from "./MemoryKeyRepo.js"
import { removeMembership } from "./MemoryMembershipRepo.js"
import type { MemoryState } from "./MemoryState.js"

/** @since 0.1.0 */
export const make = (state: MemoryState): TeamRepoShape => ({
  find: Effect.fn("TeamRepo.find")(function* (teamId: TeamId) {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    const row = state.teams.get(teamId)
    return row === undefined ? Option.none() : Option.some(toTeam(state, row, now))
  }),

  list: Effect.fn("TeamRepo.list")(function* () {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    return Array.from(state.teams.values(), (row) => toTeam(state, row, now))
  }),

  insert: Effect.fn("TeamRepo.insert")(function* (draft: TeamDraft) {
    const now = yield* Clock.currentTimeMillis
    if (state.teams.has(draft.teamId)) return yield* new AlreadyExists({ entity: "team", id: draft.teamId })
    const row = { ...draft, createdAt: DateTime.unsafeMake(now) }
    state.teams.set(row.teamId, row)
    openScope(state, teamKey(row.teamId), row.limits, now)
    return toTeam(state, row, now)
  }),

  update: Effect.fn("TeamRepo.update")(function* (teamId: TeamId, patch: TeamPatch) {
    const now = yield* Clock.currentTimeMillis
    const row = state.teams.get(teamId)
    if (row === undefined) return yield* new NotFound({ entity: "team", id: teamId })
    const next = {
      ...row,
      teamAlias: patch.teamAlias ?? row.teamAlias,
      organizationId: patch.organizationId ?? row.organizationId,
      limits: patchLimits(state, teamKey(teamId), row.limits, patch.limits, now),
      models: patch.models ?? row.models,
      blocked: patch.blocked ?? row.blocked,
      metadata: patch.metadata ?? row.metadata
    }
    state.teams.set(teamId, next)
    tick(state, now)
    return toTeam(state, next, now)
  }),

  delete: Effect.fn("TeamRepo.delete")(function* (teamIds: ReadonlyArray<TeamId>) {
    const missing = teamIds.find((teamId) => !state.teams.has(teamId))
    if (missing !== undefined) return yield* new NotFound({ entity: "team", id: missing })
    const doomed = new Set(teamIds)
    for (const [key, membership] of state.memberships) {
      if (doomed.has(membership.teamId)) removeMembership(state, key, membership)
    }
    for (const keyRow of state.keys.values()) {
      if (Option.isSome(keyRow.teamId) && doomed.has(keyRow.teamId.value)) {
        removeKey(state, keyRow)
      }
    }
    for (const teamId of doomed) {
      state.teams.delete(teamId)
      state.counters.delete(teamKey(teamId))
    }
  })
})
