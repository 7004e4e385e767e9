/**
 * Teams in the SQL stores.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option, Schema } from "effect"
import { NotFound } from "../../domain/Errors.js"
import { OrganizationId, TeamId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import { Team } from "../../domain/Team.js"
import { GLOBAL_BUDGET_ID } from "../BudgetRepo.js"
import type { TeamDraft, TeamPatch, TeamRepoShape } from "../TeamRepo.js"
import {
  FlagColumn,
  flag,
  json,
  limitFields,
  limitValues,
  MetadataColumn,
  ModelsColumn,
  nullable,
  TimeColumn,
  toLimits
} from "./Columns.js"
import * as CounterStatements from "./CounterStatements.js"
import { insertTransaction, syncNewScope, syncPatchedScope, transaction, patchedRow } from "./ScopedWrites.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeEach, decodeFirst, type RepoContext, reclaimDue, written } from "./SqlSupport.js"

const TeamRow = Schema.Struct({
  team_id: TeamId,
  team_alias: Schema.String,
  organization_id: nullable(OrganizationId),
  ...limitFields,
  models: ModelsColumn,
  blocked: FlagColumn,
  metadata: MetadataColumn,
  created_at: TimeColumn,
  ...Counters.spendFields
})

const decodeRow = rowDecoder("team", TeamRow, column("team_id"))

const toTeam =
  (now: number) =>
  (row: typeof TeamRow.Type): Team =>
    new Team(
      {
        teamId: row.team_id,
        teamAlias: row.team_alias,
        organizationId: row.organization_id,
        limits: toLimits(row),
        models: row.models,
        blocked: row.blocked,
        metadata: row.metadata,
        spend: Counters.snapshot(row, row.budget_duration, now),
        createdAt: row.created_at
      },
      true
    )

/** @since 0.1.0 */
export const teamKey = (teamId: TeamId): string => Scope.key({ kind: "team", id: teamId })

/** @since 0.1.0 */
export const make = (context: RepoContext): TeamRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(`SELECT t.*, ${Counters.SPEND_COLUMNS} FROM tb_teams t
    LEFT JOIN tb_counters c ON c.scope_key = 'team:' || t.team_id`)

  const read = (teamId: TeamId, now: number) =>
    Effect.flatMap(sql<Record<string, unknown>>`${select} WHERE t.team_id = ${teamId}`, (rows) =>
      Effect.map(decodeFirst(decodeRow)(rows), Option.map(toTeam(now)))
    )

  const findNow = (teamId: TeamId, now: number) =>
    Effect.zipRight(reclaimDue(context, now), read(teamId, now))

  /** Reads back a row this transaction wrote. */
  const reread = (teamId: TeamId, now: number) => written("team", read(teamId, now))

  return {
    find: Effect.fn("TeamRepo.find")(function* (teamId: TeamId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("team.find", timeout)(findNow(teamId, now))
    }),

    list: Effect.fn("TeamRepo.list")(function* () {
      const now = yield* Clock.currentTimeMillis
      return yield* guard(
        "team.list",
        timeout
      )(
        Effect.gen(function* () {
          yield* reclaimDue(context, now)
          const rows = yield* sql<Record<string, unknown>>`${select} ORDER BY t.created_at, t.team_id`
          return (yield* decodeEach(decodeRow)(rows)).map(toTeam(now))
        })
      )
    }),

    insert: Effect.fn("TeamRepo.insert")(function* (draft: TeamDraft) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        yield* sql`INSERT INTO tb_teams ${sql.insert({
          team_id: draft.teamId,
          team_alias: draft.teamAlias,
          organization_id: Option.getOrNull(draft.organizationId),
          ...limitValues(draft.limits),
          models: json(draft.models),
          blocked: flag(draft.blocked),
          metadata: json(draft.metadata),
          created_at: now
        })}`
        yield* syncNewScope(sql, teamKey(draft.teamId), draft.limits, now)
        return yield* reread(draft.teamId, now)
      })
      return yield* insertTransaction(context, "team.insert", now, "team", draft.teamId)(write)
    }),

    update: Effect.fn("TeamRepo.update")(function* (teamId: TeamId, patch: TeamPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows = yield* sql<
          Record<string, unknown>
        >`${select} WHERE t.team_id = ${teamId}${Dialect.forUpdateOf(sql, "t")}`
        const { row, before, limits } = yield* patchedRow(
          "team",
          teamId,
          decodeFirst(decodeRow)(rows),
          patch.limits
        )
        yield* sql`UPDATE tb_teams SET ${sql.update({
          team_alias: patch.teamAlias ?? row.team_alias,
          organization_id: Option.getOrNull(patch.organizationId ?? row.organization_id),
          ...limitValues(limits),
          models: json(patch.models ?? row.models),
          blocked: flag(patch.blocked ?? row.blocked),
          metadata: json(patch.metadata ?? row.metadata)
        })} WHERE team_id = ${teamId}`
        yield* syncPatchedScope(sql, teamKey(teamId), before, patch.limits, now)
        return yield* reread(teamId, now)
      })
      return yield* transaction(context, "team.update", now)(write)
    }),

    delete: Effect.fn("TeamRepo.delete")(function* (teamIds: ReadonlyArray<TeamId>) {
      if (teamIds.length === 0) return
      const write = Effect.gen(function* () {
        const existing = yield* sql<{ readonly team_id: string }>`SELECT team_id FROM tb_teams
          WHERE ${sql.in("team_id", teamIds)}${Dialect.forUpdate(sql)}`
        const found = new Set(existing.map((row) => row.team_id))
        const missing = teamIds.find((teamId) => !found.has(teamId))
        if (missing !== undefined) return yield* new NotFound({ entity: "team", id: missing })
        const members = yield* sql<{
          readonly scope_key: string
          readonly budget_id: string | null
        }>`SELECT scope_key, budget_id FROM tb_memberships WHERE ${sql.in("team_id", teamIds)}`
        const keys = yield* sql<{ readonly hash: string }>`SELECT hash FROM tb_keys
          WHERE ${sql.in("team_id", teamIds)}`
        yield* sql`DELETE FROM tb_keys WHERE ${sql.in("team_id", teamIds)}`
        yield* sql`DELETE FROM tb_memberships WHERE ${sql.in("team_id", teamIds)}`
        yield* sql`DELETE FROM tb_teams WHERE ${sql.in("team_id", teamIds)}`
        yield* CounterStatements.deleteScopes(sql, [
          ...keys.map((row) => `key:${row.hash}`),
          ...members.map((row) => row.scope_key),
          ...teamIds.map(teamKey)
        ])
        const budgets = members.flatMap((row) => (row.budget_id === null ? [] : [row.budget_id]))
        yield* dropUnusedBudgets(context, budgets)
      })
      yield* guard("team.delete", timeout)(sql.withTransaction(write))
    })
  }
}

/**
 * Deletes budgets that were made for members and that no membership points at any
 * more. The global budget is never one of them.
 *
 * @since 0.1.0
 */
export const dropUnusedBudgets = (context: RepoContext, budgetIds: ReadonlyArray<string>) => {
  const { sql } = context
  const candidates = budgetIds.filter((id) => id !== GLOBAL_BUDGET_ID)
  if (candidates.length === 0) return Effect.void
  return Effect.asVoid(sql`DELETE FROM tb_budgets WHERE ${sql.in("budget_id", candidates)}
    AND NOT EXISTS (SELECT 1 FROM tb_memberships m WHERE m.budget_id = tb_budgets.budget_id)`)
}
