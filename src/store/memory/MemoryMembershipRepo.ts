/**
 * Team memberships in the memory store. A member with limits of their own points at
 * a budget row made for them; without any limit the membership has no budget
 * (`Option.none()`), and only the team pool binds.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import { BudgetId, type TeamId, type UserId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import type { MemberDraft, MembershipPatch, MembershipRepoShape } from "../MembershipRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { toMembership } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import { globalBudgetId, type MembershipRow, membershipKey, type MemoryState } from "./MemoryState.js"

/** Drops a budget row that no membership points at any more (it was made for one member). */
const dropIfUnused = (state: MemoryState, budgetId: Option.Option<BudgetId>): void => {
  if (Option.isNone(budgetId) || budgetId.value === globalBudgetId) return
  for (const row of state.memberships.values()) {
    if (Option.contains(row.budgetId, budgetId.value)) return
  }
  state.budgets.delete(budgetId.value)
}

const newBudget = (state: MemoryState, limits: Limits.Limits): Option.Option<BudgetId> => {
  if (Limits.isEmpty(limits)) return Option.none()
  const budgetId = BudgetId.make(crypto.randomUUID())
  state.budgets.set(budgetId, limits)
  return Option.some(budgetId)
}

/**
 * Removes a membership with its counter and the budget made for it.
 *
 * @since 0.1.0
 */
export const removeMembership = (state: MemoryState, key: string, row: MembershipRow): void => {
  state.memberships.delete(key)
  state.counters.delete(key)
  dropIfUnused(state, row.budgetId)
}

const membershipId = (teamId: TeamId, userId: UserId): string => `${teamId}/${userId}`

/** @since 0.1.0 */
export const make = (state: MemoryState): MembershipRepoShape => {
  const list = (keep: (row: MembershipRow) => boolean, now: number) => {
    tick(state, now)
    const found = []
    for (const [key, row] of state.memberships) if (keep(row)) found.push(toMembership(state, key, row, now))
    return found
  }

  return {
    find: Effect.fn("MembershipRepo.find")(function* (teamId: TeamId, userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      tick(state, now)
      const key = membershipKey(teamId, userId)
      const row = state.memberships.get(key)
      return row === undefined ? Option.none() : Option.some(toMembership(state, key, row, now))
    }),

    listByTeam: Effect.fn("MembershipRepo.listByTeam")(function* (teamId: TeamId) {
      const now = yield* Clock.currentTimeMillis
      return list((row) => row.teamId === teamId, now)
    }),

    listByUser: Effect.fn("MembershipRepo.listByUser")(function* (userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return list((row) => row.userId === userId, now)
    }),

    add: Effect.fn("MembershipRepo.add")(function* (teamId: TeamId, members: ReadonlyArray<MemberDraft>) {
      const now = yield* Clock.currentTimeMillis
      if (!state.teams.has(teamId)) return yield* new NotFound({ entity: "team", id: teamId })
      const seen = new Set<UserId>()
      for (const member of members) {
        if (!state.users.has(member.userId)) return yield* new NotFound({ entity: "user", id: member.userId })
        if (seen.has(member.userId) || state.memberships.has(membershipKey(teamId, member.userId))) {
          return yield* new AlreadyExists({ entity: "membership", id: membershipId(teamId, member.userId) })
        }
        seen.add(member.userId)
      }
      tick(state, now)
      return members.map((member) => {
        const key = membershipKey(teamId, member.userId)
        const limits = Option.getOrElse(member.limits, () => Limits.none)
        const row: MembershipRow = {
          teamId,
          userId: member.userId,
          role: member.role,
          budgetId: newBudget(state, limits)
        }
        state.memberships.set(key, row)
        openScope(state, key, limits, now)
        return toMembership(state, key, row, now)
      })
    }),

    update: Effect.fn("MembershipRepo.update")(function* (
      teamId: TeamId,
      userId: UserId,
      patch: MembershipPatch
    ) {
      const now = yield* Clock.currentTimeMillis
      const key = membershipKey(teamId, userId)
      const row = state.memberships.get(key)
      if (row === undefined)
        return yield* new NotFound({ entity: "membership", id: membershipId(teamId, userId) })
      let budgetId = row.budgetId
      if (patch.limits !== undefined) {
        const before = Option.match(budgetId, {
          onNone: () => Limits.none,
          onSome: (id) => state.budgets.get(id) ?? Limits.none
        })
        const after = patchLimits(state, key, before, patch.limits, now)
        if (Limits.isEmpty(after)) {
          budgetId = Option.none()
        } else if (Option.isSome(budgetId)) {
          state.budgets.set(budgetId.value, after)
        } else {
          budgetId = newBudget(state, after)
        }
      }
      const next: MembershipRow = { ...row, role: patch.role ?? row.role, budgetId }
      state.memberships.set(key, next)
      if (Option.isNone(budgetId)) dropIfUnused(state, row.budgetId)
      tick(state, now)
      return toMembership(state, key, next, now)
    }),

    remove: Effect.fn("MembershipRepo.remove")(function* (teamId: TeamId, userId: UserId) {
      const key = membershipKey(teamId, userId)
      const row = state.memberships.get(key)
      if (row === undefined)
        return yield* new NotFound({ entity: "membership", id: membershipId(teamId, userId) })
      removeMembership(state, key, row)
    })
  }
}
