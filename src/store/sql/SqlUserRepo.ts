/**
 * Users in the SQL stores.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option, Schema } from "effect"
import { UserId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import { User, UserRole } from "../../domain/User.js"
import type { UserDraft, UserPatch, UserRepoShape } from "../UserRepo.js"
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
import { insertTransaction, syncNewScope, syncPatchedScope, transaction, patchedRow } from "./ScopedWrites.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { column, guard, rowDecoder } from "./SqlErrors.js"
import { decodeFirst, type RepoContext, reclaimDue, written } from "./SqlSupport.js"

const UserRow = Schema.Struct({
  user_id: UserId,
  user_email: nullable(Schema.String),
  user_role: UserRole,
  ...limitFields,
  models: ModelsColumn,
  blocked: FlagColumn,
  metadata: MetadataColumn,
  created_at: TimeColumn,
  ...Counters.spendFields
})

const decodeRow = rowDecoder("user", UserRow, column("user_id"))

const toUser =
  (now: number) =>
  (row: typeof UserRow.Type): User =>
    new User(
      {
        userId: row.user_id,
        userEmail: row.user_email,
        userRole: row.user_role,
        limits: toLimits(row),
        models: row.models,
        blocked: row.blocked,
        metadata: row.metadata,
        spend: Counters.snapshot(row, row.budget_duration, now),
        createdAt: row.created_at
      },
      true
    )

const userKey = (userId: UserId): string => Scope.key({ kind: "user", id: userId })

/** @since 0.1.0 */
export const make = (context: RepoContext): UserRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(`SELECT u.*, ${Counters.SPEND_COLUMNS} FROM tb_users u
    LEFT JOIN tb_counters c ON c.scope_key = 'user:' || u.user_id`)

  const read = (userId: UserId, now: number) =>
    Effect.flatMap(sql<Record<string, unknown>>`${select} WHERE u.user_id = ${userId}`, (rows) =>
      Effect.map(decodeFirst(decodeRow)(rows), Option.map(toUser(now)))
    )

  /** Reads back a row this transaction wrote. */
  const reread = (userId: UserId, now: number) => written("user", read(userId, now))

  return {
    find: Effect.fn("UserRepo.find")(function* (userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("user.find", timeout)(Effect.zipRight(reclaimDue(context, now), read(userId, now)))
    }),

    insert: Effect.fn("UserRepo.insert")(function* (draft: UserDraft) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        yield* sql`INSERT INTO tb_users ${sql.insert({
          user_id: draft.userId,
          user_email: Option.getOrNull(draft.userEmail),
          user_role: draft.userRole,
          ...limitValues(draft.limits),
          models: json(draft.models),
          blocked: flag(draft.blocked),
          metadata: json(draft.metadata),
          created_at: now
        })}`
        yield* syncNewScope(sql, userKey(draft.userId), draft.limits, now)
        return yield* reread(draft.userId, now)
      })
      return yield* insertTransaction(context, "user.insert", now, "user", draft.userId)(write)
    }),

    update: Effect.fn("UserRepo.update")(function* (userId: UserId, patch: UserPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows = yield* sql<
          Record<string, unknown>
        >`${select} WHERE u.user_id = ${userId}${Dialect.forUpdateOf(sql, "u")}`
        const { row, before, limits } = yield* patchedRow(
          "user",
          userId,
          decodeFirst(decodeRow)(rows),
          patch.limits
        )
        yield* sql`UPDATE tb_users SET ${sql.update({
          user_email: Option.getOrNull(patch.userEmail ?? row.user_email),
          user_role: patch.userRole ?? row.user_role,
          ...limitValues(limits),
          models: json(patch.models ?? row.models),
          blocked: flag(patch.blocked ?? row.blocked),
          metadata: json(patch.metadata ?? row.metadata)
        })} WHERE user_id = ${userId}`
        yield* syncPatchedScope(sql, userKey(userId), before, patch.limits, now)
        return yield* reread(userId, now)
      })
      return yield* transaction(context, "user.update", now)(write)
    })
  }
}
