/**
 * Organizations in the memory store.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Option } from "effect"
import { AlreadyExists, NotFound } from "../../domain/Errors.js"
import type { OrganizationId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import type { OrganizationDraft, OrganizationPatch, OrganizationRepoShape } from "../OrganizationRepo.js"
import { openScope, patchLimits } from "./MemoryCounters.js"
import { toOrganization } from "./MemoryEntities.js"
import { tick } from "./MemoryHolds.js"
import type { MemoryState, OrganizationRow } from "./MemoryState.js"

const scopeKey = (id: OrganizationId): string => Scope.key({ kind: "organization", id })

/** @since 0.1.0 */
export const make = (state: MemoryState): OrganizationRepoShape => ({
  find: Effect.fn("OrganizationRepo.find")(function* (id: OrganizationId) {
    const now = yield* Clock.currentTimeMillis
    tick(state, now)
    const row = state.organizations.get(id)
    return row === undefined ? Option.none() : Option.some(toOrganization(state, row, now))
  }),

  insert: Effect.fn("OrganizationRepo.insert")(function* (draft: OrganizationDraft) {
    const now = yield* Clock.currentTimeMillis
    if (state.organizations.has(draft.organizationId)) {
      return yield* new AlreadyExists({ entity: "organization", id: draft.organizationId })
    }
    const row: OrganizationRow = { ...draft, createdAt: DateTime.unsafeMake(now) }
    state.organizations.set(row.organizationId, row)
    openScope(state, scopeKey(row.organizationId), row.limits, now)
    return toOrganization(state, row, now)
  }),

  update: Effect.fn("OrganizationRepo.update")(function* (id: OrganizationId, patch: OrganizationPatch) {
    const now = yield* Clock.currentTimeMillis
    const row = state.organizations.get(id)
    if (row === undefined) return yield* new NotFound({ entity: "organization", id })
    const next: OrganizationRow = {
      ...row,
      organizationAlias: patch.organizationAlias ?? row.organizationAlias,
      limits: patchLimits(state, scopeKey(id), row.limits, patch.limits, now),
      models: patch.models ?? row.models,
      blocked: patch.blocked ?? row.blocked
    }
    state.organizations.set(id, next)
    tick(state, now)
    return toOrganization(state, next, now)
  })
})
