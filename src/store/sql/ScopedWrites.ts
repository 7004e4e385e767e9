/**
 * The write steps every repository of a scope-bearing entity (team, user, key,
 * organization, end user) shares: its counter row follows the entity's limits in the
 * same transaction, and each write reclaims due holds first, then runs as one
 * transaction within the store's timeout.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import { type EntityKind, NotFound } from "../../domain/Errors.js"
import * as Limits from "../../domain/Limits.js"
import { type LimitColumns, toLimits } from "./Columns.js"
import * as CounterStatements from "./CounterStatements.js"
import { guard } from "./SqlErrors.js"
import { alreadyExists, reclaimDue, type RepoContext } from "./SqlSupport.js"

/** The counter of a new scope, carrying its cap; a duration starts its first window now. @since 0.1.0 */
export const syncNewScope = (
  sql: SqlClient,
  key: string,
  limits: Limits.Limits,
  now: number
): Effect.Effect<void, SqlError> =>
  CounterStatements.syncScope(sql, key, limits, now, Option.isSome(limits.budgetDuration))

/** The limits after a patch (`undefined`: unchanged). @since 0.1.0 */
export const patched = (before: Limits.Limits, patch: Limits.LimitsPatch | undefined): Limits.Limits =>
  patch === undefined ? before : Limits.patch(before, patch)

/**
 * The counter after an update: it follows changed limits, and a changed duration
 * starts a new window with nothing spent in it. Nothing to do when the limits were
 * not part of the update.
 *
 * @since 0.1.0
 */
export const syncPatchedScope = (
  sql: SqlClient,
  key: string,
  before: Limits.Limits,
  patch: Limits.LimitsPatch | undefined,
  now: number
): Effect.Effect<void, SqlError> =>
  patch === undefined
    ? Effect.void
    : CounterStatements.syncScope(
        sql,
        key,
        patched(before, patch),
        now,
        Limits.changesDuration(before, patch)
      )

/** Runs a write as one transaction, after reclaiming due holds, within the store's timeout. @since 0.1.0 */
export const transaction =
  (context: RepoContext, operation: string, now: number) =>
  <A, E, R>(write: Effect.Effect<A, E | SqlError, R>) =>
    guard(
      operation,
      context.timeout
    )(Effect.zipRight(reclaimDue(context, now), context.sql.withTransaction(write)))

/** {@link transaction} for an insert: a row with the same id is `AlreadyExists`. @since 0.1.0 */
export const insertTransaction =
  (context: RepoContext, operation: string, now: number, entity: EntityKind, id: string) =>
  <A, E, R>(write: Effect.Effect<A, E | SqlError, R>) =>
    guard(
      operation,
      context.timeout
    )(
      Effect.zipRight(reclaimDue(context, now), alreadyExists(entity, id)(context.sql.withTransaction(write)))
    )

/**
 * The row an update changes, as the transaction locked and decoded it, with its limits
 * before and after the patch; `NotFound` when there is no such row.
 *
 * @example
 * // const { row, before, limits } = yield* patchedRow("team", teamId, decodeFirst(decodeRow)(rows), patch.limits)
 * @since 0.1.0
 */
export const patchedRow = <Row extends LimitColumns, E, R>(
  entity: EntityKind,
  id: string,
  locked: Effect.Effect<Option.Option<Row>, E, R>,
  patch: Limits.LimitsPatch | undefined
): Effect.Effect<
  { readonly row: Row; readonly before: Limits.Limits; readonly limits: Limits.Limits },
  E | NotFound,
  R
> =>
  Effect.flatMap(
    locked,
    Option.match({
      onNone: () => Effect.fail(new NotFound({ entity, id })),
      onSome: (row) => {
        const before = toLimits(row)
        return Effect.succeed({ row, before, limits: patched(before, patch) })
      }
    })
  )
