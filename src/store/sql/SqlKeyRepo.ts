/**
 * Virtual keys in the SQL stores, found by the hash of their token or by their
 * public id. A key is named in errors by its public id, never by its hash.
 *
 * @since 0.1.0
 */
import type { Fragment } from "@effect/sql/Statement"
import { Clock, type DateTime, Effect, Either, Option, Schema } from "effect"
import { CorruptRecord, NotFound } from "../../domain/Errors.js"
import { KeyHash, KeyId, TeamId, UserId } from "../../domain/Ids.js"
import * as Scope from "../../domain/Scope.js"
import { VirtualKey } from "../../domain/VirtualKey.js"
import type { KeyDraft, KeyPatch, KeyRepoShape } from "../KeyRepo.js"
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
import { decodeEach, decodeFirst, type RepoContext, reclaimDue, type Row, written } from "./SqlSupport.js"

/** A key is named by its hash only here; errors must never show it. */
const UNKNOWN_KEY = "with this token"

const KeyColumns = Schema.Struct({
  hash: KeyHash,
  key_id: KeyId,
  key_alias: nullable(Schema.String),
  display_prefix: Schema.String,
  user_id: nullable(UserId),
  team_id: nullable(TeamId),
  ...limitFields,
  models: ModelsColumn,
  expires: nullable(TimeColumn),
  blocked: FlagColumn,
  metadata: MetadataColumn,
  created_at: TimeColumn
})

const KeyRow = Schema.Struct({
  ...KeyColumns.fields,
  ...Counters.spendFields,
  team_ref: nullable(Schema.String)
})

const decodeColumns = rowDecoder("key", KeyColumns, column("key_id"))

const decodeKeyRow = rowDecoder("key", KeyRow, column("key_id"))

/**
 * A key row, decoded. A key whose team is gone is corrupt (deleting a team deletes
 * its keys), and only that key's requests fail on it.
 */
const decodeRow = (now: number) => (row: Row) =>
  Either.flatMap(decodeKeyRow(row), (key) =>
    Option.isSome(key.team_id) && Option.isNone(key.team_ref)
      ? Either.left(
          new CorruptRecord({
            entity: "key",
            id: key.key_id,
            detail: `its team ${key.team_id.value} does not exist`
          })
        )
      : Either.right(toKey(now)(key))
  )

const toKey =
  (now: number) =>
  (row: typeof KeyRow.Type): VirtualKey =>
    new VirtualKey(
      {
        keyId: row.key_id,
        hash: row.hash,
        keyAlias: row.key_alias,
        displayPrefix: row.display_prefix,
        userId: row.user_id,
        teamId: row.team_id,
        limits: toLimits(row),
        models: row.models,
        expires: row.expires,
        blocked: row.blocked,
        metadata: row.metadata,
        spend: Counters.snapshot(row, row.budget_duration, now),
        createdAt: row.created_at
      },
      true
    )

/** @since 0.1.0 */
export const keyScopeKey = (hash: KeyHash): string => Scope.key({ kind: "key", id: hash, label: "" })

/** @since 0.1.0 */
export const make = (context: RepoContext): KeyRepoShape => {
  const { sql, timeout } = context
  const select = sql.literal(`SELECT k.*, ${Counters.SPEND_COLUMNS}, t.team_id AS team_ref FROM tb_keys k
    LEFT JOIN tb_counters c ON c.scope_key = 'key:' || k.hash
    LEFT JOIN tb_teams t ON t.team_id = k.team_id`)

  const readOne = (where: Fragment, now: number) =>
    Effect.flatMap(sql<Row>`${select} WHERE ${where}`, decodeFirst(decodeRow(now)))

  const byHash = (hash: KeyHash, now: number) => readOne(sql`k.hash = ${hash}`, now)

  const list = (where: Fragment, now: number, order: Fragment = sql`k.created_at, k.key_id`) =>
    Effect.gen(function* () {
      yield* reclaimDue(context, now)
      const rows = yield* sql<Row>`${select} WHERE ${where} ORDER BY ${order}`
      return yield* decodeEach(decodeRow(now))(rows)
    })

  /** Reads back a row this transaction wrote. */
  const reread = (hash: KeyHash, now: number) => written("key", byHash(hash, now))

  return {
    find: Effect.fn("KeyRepo.find")(function* (hash: KeyHash) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("key.find", timeout)(Effect.zipRight(reclaimDue(context, now), byHash(hash, now)))
    }),

    findById: Effect.fn("KeyRepo.findById")(function* (keyId: KeyId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard(
        "key.find",
        timeout
      )(Effect.zipRight(reclaimDue(context, now), readOne(sql`k.key_id = ${keyId}`, now)))
    }),

    listByTeam: Effect.fn("KeyRepo.listByTeam")(function* (teamId: TeamId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("key.list", timeout)(list(sql`k.team_id = ${teamId}`, now))
    }),

    listByUser: Effect.fn("KeyRepo.listByUser")(function* (userId: UserId) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard("key.list", timeout)(list(sql`k.user_id = ${userId}`, now))
    }),

    listExpiring: Effect.fn("KeyRepo.listExpiring")(function* (after: DateTime.Utc, until: DateTime.Utc) {
      const now = yield* Clock.currentTimeMillis
      return yield* guard(
        "key.list",
        timeout
      )(
        list(
          sql`k.expires > ${after.epochMillis} AND k.expires <= ${until.epochMillis}`,
          now,
          sql`k.expires, k.key_id`
        )
      )
    }),

    insert: Effect.fn("KeyRepo.insert")(function* (draft: KeyDraft) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        yield* sql`INSERT INTO tb_keys ${sql.insert({
          hash: draft.hash,
          key_id: draft.keyId,
          key_alias: Option.getOrNull(draft.keyAlias),
          display_prefix: draft.displayPrefix,
          user_id: Option.getOrNull(draft.userId),
          team_id: Option.getOrNull(draft.teamId),
          ...limitValues(draft.limits),
          models: json(draft.models),
          expires: Option.getOrNull(Option.map(draft.expires, (at) => at.epochMillis)),
          blocked: flag(draft.blocked),
          metadata: json(draft.metadata),
          created_at: now
        })}`
        yield* syncNewScope(sql, keyScopeKey(draft.hash), draft.limits, now)
        return yield* reread(draft.hash, now)
      })
      return yield* insertTransaction(context, "key.insert", now, "key", draft.keyId)(write)
    }),

    update: Effect.fn("KeyRepo.update")(function* (hash: KeyHash, patch: KeyPatch) {
      const now = yield* Clock.currentTimeMillis
      const write = Effect.gen(function* () {
        const rows = yield* sql<Row>`SELECT * FROM tb_keys WHERE hash = ${hash}${Dialect.forUpdate(sql)}`
        const { row, before, limits } = yield* patchedRow(
          "key",
          UNKNOWN_KEY,
          decodeFirst(decodeColumns)(rows),
          patch.limits
        )
        const expires = patch.expires ?? row.expires
        yield* sql`UPDATE tb_keys SET ${sql.update({
          key_alias: Option.getOrNull(patch.keyAlias ?? row.key_alias),
          user_id: Option.getOrNull(patch.userId ?? row.user_id),
          team_id: Option.getOrNull(patch.teamId ?? row.team_id),
          ...limitValues(limits),
          models: json(patch.models ?? row.models),
          expires: Option.getOrNull(Option.map(expires, (at) => at.epochMillis)),
          blocked: flag(patch.blocked ?? row.blocked),
          metadata: json(patch.metadata ?? row.metadata)
        })} WHERE hash = ${hash}`
        yield* syncPatchedScope(sql, keyScopeKey(hash), before, patch.limits, now)
        return yield* reread(hash, now)
      })
      return yield* transaction(context, "key.update", now)(write)
    }),

    delete: Effect.fn("KeyRepo.delete")(function* (hashes: ReadonlyArray<KeyHash>) {
      if (hashes.length === 0) return
      const write = Effect.gen(function* () {
        const existing = yield* sql<{ readonly hash: string }>`SELECT hash FROM tb_keys
          WHERE ${sql.in("hash", hashes)}${Dialect.forUpdate(sql)}`
        const found = new Set(existing.map((row) => row.hash))
        if (hashes.some((hash) => !found.has(hash)))
          return yield* new NotFound({ entity: "key", id: UNKNOWN_KEY })
        yield* sql`DELETE FROM tb_keys WHERE ${sql.in("hash", hashes)}`
        yield* CounterStatements.deleteScopes(sql, hashes.map(keyScopeKey))
      })
      return yield* guard("key.delete", timeout)(sql.withTransaction(write))
    })
  }
}
