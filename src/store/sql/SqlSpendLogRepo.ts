/**
 * Reading the spend log of the SQL stores. Rows are written by the ledger, in the
 * transaction (or statement) that moves the counters.
 *
 * @since 0.1.0
 */
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Either, Schema } from "effect"
import { EndUserId, KeyHash, KeyId, OrganizationId, RequestId, TeamId, UserId } from "../../domain/Ids.js"
import { SpendLog, SpendStatus } from "../../domain/SpendLog.js"
import type { SpendLogFilter, SpendLogRepoShape } from "../SpendLogRepo.js"
import { CountColumn, MoneyColumn, nullable, TimeColumn } from "./Columns.js"
import * as SqliteSpendLogIndex from "./SqliteSpendLogIndex.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeEach, type RepoContext, type Row } from "./SqlSupport.js"

const DEFAULT_LIMIT = 1000

const SpendLogRow = Schema.Struct({
  request_id: RequestId,
  key_id: KeyId,
  key_hash: KeyHash,
  key_label: Schema.String,
  user_id: nullable(UserId),
  team_id: nullable(TeamId),
  organization_id: nullable(OrganizationId),
  end_user: nullable(EndUserId),
  model: Schema.String,
  prompt_tokens: CountColumn,
  completion_tokens: CountColumn,
  cost: MoneyColumn,
  started_at: TimeColumn,
  ended_at: TimeColumn,
  status: SpendStatus
})

const decodeSpendLogRow = rowDecoder("spend_log", SpendLogRow, column("request_id"))

const decodeRow = (row: Row) =>
  decodeSpendLogRow(row).pipe(
    Either.map(
      (r) =>
        new SpendLog(
          {
            requestId: r.request_id,
            keyId: r.key_id,
            keyHash: r.key_hash,
            keyLabel: r.key_label,
            userId: r.user_id,
            teamId: r.team_id,
            organizationId: r.organization_id,
            endUser: r.end_user,
            model: r.model,
            promptTokens: r.prompt_tokens,
            completionTokens: r.completion_tokens,
            cost: r.cost,
            startedAt: r.started_at,
            endedAt: r.ended_at,
            status: r.status
          },
          true
        )
    )
  )

/** The most selective filter the embedded store's side index serves, with its value. */
const sideIndexed = (filter: SpendLogFilter): readonly [SqliteSpendLogIndex.Dimension, string] | undefined =>
  filter.keyId !== undefined
    ? ["key", filter.keyId]
    : filter.userId !== undefined
      ? ["user", filter.userId]
      : filter.teamId !== undefined
        ? ["team", filter.teamId]
        : undefined

/** @since 0.1.0 */
export const make = (context: RepoContext): SpendLogRepoShape => {
  const { sql, timeout } = context
  // The embedded store indexes the key, user and team filters in bulk (see `SqliteSpendLogIndex.ts`).
  const embedded = sql.onDialectOrElse({ sqlite: () => true, orElse: () => false })
  return {
    query: Effect.fn("SpendLogRepo.query")(function* (filter: SpendLogFilter) {
      const clauses: Array<Fragment> = []
      if (filter.keyId !== undefined) clauses.push(sql`key_id = ${filter.keyId}`)
      if (filter.userId !== undefined) clauses.push(sql`user_id = ${filter.userId}`)
      if (filter.teamId !== undefined) clauses.push(sql`team_id = ${filter.teamId}`)
      if (filter.startDate !== undefined) clauses.push(sql`started_at >= ${filter.startDate.epochMillis}`)
      if (filter.endDate !== undefined) clauses.push(sql`started_at < ${filter.endDate.epochMillis}`)
      const limit = Math.max(0, Math.floor(filter.limit ?? DEFAULT_LIMIT))
      // By id when the side index named the rows: SQLite would otherwise walk the start-time index.
      const select = (where: ReadonlyArray<Fragment>, byId: boolean) =>
        sql<Row>`SELECT id, request_id, key_id, key_hash, key_label, user_id, team_id, organization_id, end_user,
          model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status
          FROM tb_spend_logs${byId ? sql.literal(" NOT INDEXED") : sql.literal("")}${
            where.length === 0 ? sql.literal("") : sql` WHERE ${sql.and(where)}`
          }
          ORDER BY started_at DESC, id DESC LIMIT ${limit}`
      const indexed = sideIndexed(filter)
      const rows =
        embedded && indexed !== undefined && limit > 0
          ? SqliteSpendLogIndex.newest(
              sql,
              indexed[0],
              indexed[1],
              {
                ...(filter.startDate !== undefined ? { from: filter.startDate.epochMillis } : {}),
                ...(filter.endDate !== undefined ? { to: filter.endDate.epochMillis } : {})
              },
              limit,
              (condition) => select([...clauses, condition], true)
            )
          : select(clauses, false)
      return yield* guard("spend_log.query", timeout)(Effect.flatMap(rows, decodeEach(decodeRow)))
    })
  }
}
