/**
 * End users (customers) in the SQL stores. An end user may be charged before it has a
 * row; its counter then exists already and keeps what was spent.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option, Schema } from "effect"
import { EndUser } from "../../domain/EndUser.js"
import { EndUserId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import type { EndUserDraft, EndUserPatch, EndUserRepoShape } from "../EndUserRepo.js"
import { FlagColumn, flag, limitFields, limitValues, TimeColumn, toLimits } from "./Columns.js"
import { insertTransaction, syncNewScope, syncPatchedScope, transaction, patchedRow } from "./ScopedWrites.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeFirst, type RepoContext, reclaimDue, written } from "./SqlSupport.js"

const EndUserRow = Schema.Struct({
  end_user_id: EndUserId,
  ...limitFields,
  blocked: FlagColumn,
  created_at: TimeColumn,
  ...Counters.spendFields
})

const decodeRow = rowDecoder("end_user", EndUserRow, column("end_user_id"))

const toEndUser =
  (now: number) =>
  (row: typeof EndUserRow.Type): EndUser =>
    new EndUser(
      {
        endUserId: row.end_user_id,
        limits: toLimits(row),
        blocked: row.blocked,
        spend: Counters.snapshot(row, row.budget_duration, now),
        createdAt: row.created_at
      },
      true
    )

const endUserKey = (id: EndUserId): string => Scope.key({ kind: "end_user", id })

/** @since 0.1.0 */
export const make = (context: RepoContext): EndUserRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(`SELECT e.*, ${Counters.SPEND_COLUMNS} FROM tb_end_users e
    LEFT JOIN tb_counters c ON c.scope_key = 'end_user:' || e.end_user_id`)

  const read = (id: EndUserId, now: number) =>
    Effect.flatMap(sql<Record<string, unknown>>`${select} WHERE e.end_user_id = ${id}`, (rows) =>
      Effect.map(decodeFirst(decodeRow)(rows), Option.map(toEndUser(now)))
    )

  /** Reads back a row this transaction wrote. */
  const reread = (id: EndUserId, now: number) => written("end user", read(id, now))

  return {
    find: Effect.fn("EndUserRepo.find")(function* (id: EndUserId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("end_user.find", timeout)(Effect.zipRight(reclaimDue(context, now), read(id, now)))
    }),

    insert: Effect.fn("EndUserRepo.insert")(function* (draft: EndUserDraft) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        yield* sql`INSERT INTO tb_end_users ${sql.insert({
          end_user_id: draft.endUserId,
          ...limitValues(draft.limits),
          blocked: flag(draft.blocked),
          created_at: now
        })}`
        yield* syncNewScope(sql, endUserKey(draft.endUserId), draft.limits, now)
        return yield* reread(draft.endUserId, now)
      })
      return yield* insertTransaction(context, "end_user.insert", now, "end_user", draft.endUserId)(write)
    }),

    update: Effect.fn("EndUserRepo.update")(function* (id: EndUserId, patch: EndUserPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows = yield* sql<
          Record<string, unknown>
        >`${select} WHERE e.end_user_id = ${id}${Dialect.forUpdateOf(sql, "e")}`
        const { row, before, limits } = yield* patchedRow(
          "end_user",
          id,
          decodeFirst(decodeRow)(rows),
          patch.limits
        )
        yield* sql`UPDATE tb_end_users SET ${sql.update({
          ...limitValues(limits),
          blocked: flag(patch.blocked ?? row.blocked)
        })} WHERE end_user_id = ${id}`
        yield* syncPatchedScope(sql, endUserKey(id), before, patch.limits, now)
        return yield* reread(id, now)
      })
      return yield* transaction(context, "end_user.update", now)(write)
    })
  }
}
