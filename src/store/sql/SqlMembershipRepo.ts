/**
 * Team memberships in the SQL stores. A member's own budget is a nullable link to a
 * budget row: a NULL link reads as `budget: Option.none()` (no cap of their own, the
 * team pool binds), never as an error. A link to a budget row that does not exist is
 * corrupt, and fails only the requests that need that membership.
 *
 * @since 0.1.0
 */
import type { Fragment } from "@effect/sql/Statement"
import { Clock, Effect, Either, Option, Schema } from "effect"
import { Budget } from "../../domain/Budget.js"
import { AlreadyExists, CorruptRecord, NotFound } from "../../domain/Errors.js"
import { BudgetId, TeamId, UserId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import * as Scope from "../../domain/Scope.js"
import { MemberRole, TeamMembership } from "../../domain/TeamMembership.js"
import type { MemberDraft, MembershipPatch, MembershipRepoShape } from "../MembershipRepo.js"
import { limitFields, limitValues, nullable, toLimits } from "./Columns.js"
import * as CounterStatements from "./CounterStatements.js"
import * as Counters from "./Counters.js"
import { syncBudgetScopes } from "./SqlBudgetRepo.js"
import * as Dialect from "./Dialect.js"
import { guard, rowDecoder } from "./SqlErrors.js"
import { decodeEach, decodeFirst, type RepoContext, reclaimDue, type Row, written } from "./SqlSupport.js"
import { dropUnusedBudgets } from "./SqlTeamRepo.js"

const BudgetColumns = Schema.Struct(limitFields)

const MembershipRow = Schema.Struct({
  team_id: TeamId,
  user_id: UserId,
  role: MemberRole,
  budget_id: nullable(BudgetId),
  b_budget_id: nullable(Schema.String),
  ...Counters.spendFields
})

const membershipId = (teamId: string, userId: string): string => `${teamId}/${userId}`

const idOf = (row: Row): string => membershipId(String(row["team_id"]), String(row["user_id"]))

const decodeMembership = rowDecoder("membership", MembershipRow, idOf)

/** The budget columns come prefixed with `b_`; a NULL link leaves them all NULL. */
const budgetColumns = (row: Row): Row => ({
  max_budget: row["b_max_budget"],
  soft_budget: row["b_soft_budget"],
  budget_duration: row["b_budget_duration"],
  tpm_limit: row["b_tpm_limit"],
  rpm_limit: row["b_rpm_limit"],
  max_parallel_requests: row["b_max_parallel_requests"]
})

const decodeBudget = rowDecoder("membership", BudgetColumns, idOf)

const decodeRow = (now: number) => (row: Row) =>
  Either.gen(function* () {
    const membership = yield* decodeMembership(row)
    const id = membershipId(membership.team_id, membership.user_id)
    let budget = Option.none<Budget>()
    if (Option.isSome(membership.budget_id)) {
      if (Option.isNone(membership.b_budget_id)) {
        return yield* Either.left(
          new CorruptRecord({
            entity: "membership",
            id,
            detail: `its budget ${membership.budget_id.value} does not exist`
          })
        )
      }
      const limits = toLimits(
        yield* decodeBudget({ ...budgetColumns(row), team_id: row["team_id"], user_id: row["user_id"] })
      )
      budget = Option.some(new Budget({ budgetId: membership.budget_id.value, limits }, true))
    }
    const duration = Option.flatMap(budget, (b) => b.limits.budgetDuration)
    return new TeamMembership(
      {
        teamId: membership.team_id,
        userId: membership.user_id,
        role: membership.role,
        spend: Counters.snapshot(membership, duration, now),
        budget
      },
      true
    )
  })

const SELECT = `SELECT m.team_id, m.user_id, m.role, m.budget_id, b.budget_id AS b_budget_id,
  b.max_budget AS b_max_budget, b.soft_budget AS b_soft_budget, b.budget_duration AS b_budget_duration,
  b.tpm_limit AS b_tpm_limit, b.rpm_limit AS b_rpm_limit, b.max_parallel_requests AS b_max_parallel_requests,
  ${Counters.SPEND_COLUMNS}
  FROM tb_memberships m
  LEFT JOIN tb_budgets b ON b.budget_id = m.budget_id
  LEFT JOIN tb_counters c ON c.scope_key = m.scope_key`

const membershipKey = (teamId: TeamId, userId: UserId): string =>
  Scope.key({ kind: "membership", teamId, userId })

/** @since 0.1.0 */
export const make = (context: RepoContext): MembershipRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(SELECT)

  const read = (teamId: TeamId, userId: UserId, now: number) =>
    Effect.flatMap(
      sql<Row>`${select} WHERE m.team_id = ${teamId} AND m.user_id = ${userId}`,
      decodeFirst(decodeRow(now))
    )

  const list = (where: Fragment, now: number) =>
    Effect.gen(function* () {
      yield* reclaimDue(context, now)
      const rows = yield* sql<Row>`${select} WHERE ${where} ORDER BY m.created_at, m.team_id, m.user_id`
      return yield* decodeEach(decodeRow(now))(rows)
    })

  /** Reads back a row this transaction wrote. */
  const reread = (teamId: TeamId, userId: UserId, now: number) =>
    written("membership", read(teamId, userId, now))

  /** A budget row made for one member. */
  const newBudget = (limits: Limits.Limits, now: number) =>
    Effect.gen(function* () {
      if (Limits.isEmpty(limits)) return Option.none<string>()
      const budgetId = crypto.randomUUID()
      yield* sql`INSERT INTO tb_budgets ${sql.insert({ budget_id: budgetId, ...limitValues(limits), created_at: now })}`
      return Option.some(budgetId)
    })

  return {
    find: Effect.fn("MembershipRepo.find")(function* (teamId: TeamId, userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard(
        "membership.find",
        timeout
      )(Effect.zipRight(reclaimDue(context, now), read(teamId, userId, now)))
    }),

    listByTeam: Effect.fn("MembershipRepo.listByTeam")(function* (teamId: TeamId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("membership.list", timeout)(list(sql`m.team_id = ${teamId}`, now))
    }),

    listByUser: Effect.fn("MembershipRepo.listByUser")(function* (userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("membership.list", timeout)(list(sql`m.user_id = ${userId}`, now))
    }),

    add: Effect.fn("MembershipRepo.add")(function* (teamId: TeamId, members: ReadonlyArray<MemberDraft>) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const team =
          yield* sql`SELECT team_id FROM tb_teams WHERE team_id = ${teamId}${Dialect.forUpdate(sql)}`
        if (team.length === 0) return yield* new NotFound({ entity: "team", id: teamId })
        const userIds = members.map((member) => member.userId)
        const users =
          userIds.length === 0
            ? []
            : yield* sql<{
                readonly user_id: string
              }>`SELECT user_id FROM tb_users WHERE ${sql.in("user_id", userIds)}`
        const existing =
          userIds.length === 0
            ? []
            : yield* sql<{ readonly user_id: string }>`SELECT user_id FROM tb_memberships
                WHERE team_id = ${teamId} AND ${sql.in("user_id", userIds)}`
        const known = new Set(users.map((row) => row.user_id))
        const taken = new Set(existing.map((row) => row.user_id))
        const seen = new Set<string>()
        for (const member of members) {
          if (!known.has(member.userId)) return yield* new NotFound({ entity: "user", id: member.userId })
          if (seen.has(member.userId) || taken.has(member.userId)) {
            return yield* new AlreadyExists({ entity: "membership", id: membershipId(teamId, member.userId) })
          }
          seen.add(member.userId)
        }
        const added = []
        for (const member of members) {
          const key = membershipKey(teamId, member.userId)
          const limits = Option.getOrElse(member.limits, () => Limits.none)
          const budgetId = yield* newBudget(limits, now)
          yield* sql`INSERT INTO tb_memberships ${sql.insert({
            team_id: teamId,
            user_id: member.userId,
            role: member.role,
            budget_id: Option.getOrNull(budgetId),
            scope_key: key,
            created_at: now
          })}`
          yield* CounterStatements.syncScope(
            sql,
            key,
            Option.isSome(budgetId) ? limits : undefined,
            now,
            Option.isSome(limits.budgetDuration)
          )
          added.push(yield* reread(teamId, member.userId, now))
        }
        return added
      })
      return yield* guard(
        "membership.add",
        timeout
      )(Effect.zipRight(reclaimDue(context, now), sql.withTransaction(write)))
    }),

    update: Effect.fn("MembershipRepo.update")(function* (
      teamId: TeamId,
      userId: UserId,
      patch: MembershipPatch
    ) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows =
          yield* sql<Row>`${select} WHERE m.team_id = ${teamId} AND m.user_id = ${userId}${Dialect.forUpdateOf(sql, "m")}`
        const found = yield* decodeFirst(decodeRow(now))(rows)
        if (Option.isNone(found)) {
          return yield* new NotFound({ entity: "membership", id: membershipId(teamId, userId) })
        }
        const row = found.value
        const key = membershipKey(teamId, userId)
        let budgetId = Option.map(row.budget, (budget): string => budget.budgetId)
        if (patch.limits !== undefined) {
          const before = Option.match(row.budget, {
            onNone: () => Limits.none,
            onSome: (budget) => budget.limits
          })
          const after = Limits.patch(before, patch.limits)
          const restart = Limits.changesDuration(before, patch.limits)
          if (Limits.isEmpty(after)) {
            budgetId = Option.none()
          } else if (Option.isSome(budgetId)) {
            yield* sql`UPDATE tb_budgets SET ${sql.update(limitValues(after))} WHERE budget_id = ${budgetId.value}`
            // Other scopes capped by the same budget see the new limits; only this member's window restarts.
            yield* syncBudgetScopes(sql, budgetId.value, after, now, false, new Set([key]))
          } else {
            budgetId = yield* newBudget(after, now)
          }
          yield* CounterStatements.syncScope(
            sql,
            key,
            Limits.isEmpty(after) ? undefined : after,
            now,
            restart
          )
        }
        yield* sql`UPDATE tb_memberships SET ${sql.update({
          role: patch.role ?? row.role,
          budget_id: Option.getOrNull(budgetId)
        })} WHERE team_id = ${teamId} AND user_id = ${userId}`
        if (Option.isNone(budgetId) && Option.isSome(row.budget)) {
          yield* dropUnusedBudgets(context, [row.budget.value.budgetId])
        }
        return yield* reread(teamId, userId, now)
      })
      return yield* guard(
        "membership.update",
        timeout
      )(Effect.zipRight(reclaimDue(context, now), sql.withTransaction(write)))
    }),

    remove: Effect.fn("MembershipRepo.remove")(function* (teamId: TeamId, userId: UserId) {
      const write = Effect.gen(function* () {
        const rows = yield* sql<{
          readonly scope_key: string
          readonly budget_id: string | null
        }>`SELECT scope_key, budget_id FROM tb_memberships
          WHERE team_id = ${teamId} AND user_id = ${userId}${Dialect.forUpdate(sql)}`
        const row = rows[0]
        if (row === undefined)
          return yield* new NotFound({ entity: "membership", id: membershipId(teamId, userId) })
        yield* sql`DELETE FROM tb_memberships WHERE team_id = ${teamId} AND user_id = ${userId}`
        yield* CounterStatements.deleteScopes(sql, [row.scope_key])
        if (row.budget_id !== null) yield* dropUnusedBudgets(context, [row.budget_id])
      })
      return yield* guard("membership.remove", timeout)(sql.withTransaction(write))
    })
  }
}
