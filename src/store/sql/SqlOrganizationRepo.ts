/**
 * Organizations in the SQL stores.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option, Schema } from "effect"
import { OrganizationId } from "../../domain/Ids.js"
import { Organization } from "../../domain/Organization.js"
import * as Scope from "../../domain/Scope.js"
import type { OrganizationDraft, OrganizationPatch, OrganizationRepoShape } from "../OrganizationRepo.js"
import {
  FlagColumn,
  flag,
  json,
  limitFields,
  limitValues,
  ModelsColumn,
  TimeColumn,
  toLimits
} from "./Columns.js"
import { insertTransaction, syncNewScope, syncPatchedScope, transaction, patchedRow } from "./ScopedWrites.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeFirst, type RepoContext, reclaimDue, written } from "./SqlSupport.js"

const OrganizationRow = Schema.Struct({
  organization_id: OrganizationId,
  organization_alias: Schema.String,
  ...limitFields,
  models: ModelsColumn,
  blocked: FlagColumn,
  created_at: TimeColumn,
  ...Counters.spendFields
})

const decodeRow = rowDecoder("organization", OrganizationRow, column("organization_id"))

const toOrganization =
  (now: number) =>
  (row: typeof OrganizationRow.Type): Organization =>
    new Organization(
      {
        organizationId: row.organization_id,
        organizationAlias: row.organization_alias,
        limits: toLimits(row),
        models: row.models,
        blocked: row.blocked,
        spend: Counters.snapshot(row, row.budget_duration, now),
        createdAt: row.created_at
      },
      true
    )

const organizationKey = (id: OrganizationId): string => Scope.key({ kind: "organization", id })

/** @since 0.1.0 */
export const make = (context: RepoContext): OrganizationRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(`SELECT o.*, ${Counters.SPEND_COLUMNS} FROM tb_organizations o
    LEFT JOIN tb_counters c ON c.scope_key = 'organization:' || o.organization_id`)

  const read = (id: OrganizationId, now: number) =>
    Effect.flatMap(sql<Record<string, unknown>>`${select} WHERE o.organization_id = ${id}`, (rows) =>
      Effect.map(decodeFirst(decodeRow)(rows), Option.map(toOrganization(now)))
    )

  /** Reads back a row this transaction wrote. */
  const reread = (id: OrganizationId, now: number) => written("organization", read(id, now))

  return {
    find: Effect.fn("OrganizationRepo.find")(function* (id: OrganizationId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard(
        "organization.find",
        timeout
      )(Effect.zipRight(reclaimDue(context, now), read(id, now)))
    }),

    insert: Effect.fn("OrganizationRepo.insert")(function* (draft: OrganizationDraft) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        yield* sql`INSERT INTO tb_organizations ${sql.insert({
          organization_id: draft.organizationId,
          organization_alias: draft.organizationAlias,
          ...limitValues(draft.limits),
          models: json(draft.models),
          blocked: flag(draft.blocked),
          created_at: now
        })}`
        yield* syncNewScope(sql, organizationKey(draft.organizationId), draft.limits, now)
        return yield* reread(draft.organizationId, now)
      })
      return yield* insertTransaction(
        context,
        "organization.insert",
        now,
        "organization",
        draft.organizationId
      )(write)
    }),

    update: Effect.fn("OrganizationRepo.update")(function* (id: OrganizationId, patch: OrganizationPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows = yield* sql<
          Record<string, unknown>
        >`${select} WHERE o.organization_id = ${id}${Dialect.forUpdateOf(sql, "o")}`
        const { row, before, limits } = yield* patchedRow(
          "organization",
          id,
          decodeFirst(decodeRow)(rows),
          patch.limits
        )
        yield* sql`UPDATE tb_organizations SET ${sql.update({
          organization_alias: patch.organizationAlias ?? row.organization_alias,
          ...limitValues(limits),
          models: json(patch.models ?? row.models),
          blocked: flag(patch.blocked ?? row.blocked)
        })} WHERE organization_id = ${id}`
        yield* syncPatchedScope(sql, organizationKey(id), before, patch.limits, now)
        return yield* reread(id, now)
      })
      return yield* transaction(context, "organization.update", now)(write)
    })
  }
}
