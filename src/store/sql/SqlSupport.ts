/**
 * Small helpers the SQL repositories share: decoding result rows, turning unique
 * violations into `AlreadyExists`, and reclaiming expired holds before spend is read.
 *
 * @since 0.1.0
 */
import { type SqlClient, TransactionConnection } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { type Duration, Effect, Either, Option } from "effect"
import { AlreadyExists, type CorruptRecord, type EntityKind } from "../../domain/Errors.js"
import * as Holds from "./Holds.js"
import { isUniqueSqlError, retryConflicts } from "./SqlErrors.js"

/** What every SQL repository is made with. @since 0.1.0 */
export interface RepoContext {
  readonly sql: SqlClient
  /** None for an in-process database. */
  readonly timeout: Option.Option<Duration.Duration>
  readonly holdTtlMillis: number
}

/** A raw result row. @since 0.1.0 */
export type Row = Record<string, unknown>

/** The first row, decoded, if there is one. @since 0.1.0 */
export const decodeFirst =
  <A>(decode: (row: Row) => Either.Either<A, CorruptRecord>) =>
  (rows: ReadonlyArray<Row>): Effect.Effect<Option.Option<A>, CorruptRecord> => {
    const row = rows[0]
    if (row === undefined) return Effect.succeed(Option.none())
    return Either.match(decode(row), {
      onLeft: (error) => Effect.fail(error),
      onRight: (value) => Effect.succeed(Option.some(value))
    })
  }

/**
 * Every row, decoded. A list needs all its rows, so one that cannot be decoded fails
 * the list, naming that row.
 *
 * @since 0.1.0
 */
export const decodeEach =
  <A>(decode: (row: Row) => Either.Either<A, CorruptRecord>) =>
  (rows: ReadonlyArray<Row>): Effect.Effect<Array<A>, CorruptRecord> =>
    Effect.suspend(() => {
      const out: Array<A> = []
      for (const row of rows) {
        const decoded = decode(row)
        if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
        out.push(decoded.right)
      }
      return Effect.succeed(out)
    })

/** Maps a unique violation of an insert to `AlreadyExists`. @since 0.1.0 */
export const alreadyExists =
  (entity: EntityKind, id: string) =>
  <A, E, R>(effect: Effect.Effect<A, E | SqlError, R>): Effect.Effect<A, E | SqlError | AlreadyExists, R> =>
    Effect.catchIf(effect, isUniqueSqlError, () => Effect.fail(new AlreadyExists({ entity, id })))

/**
 * Gives the money of expired holds back before spend is shown, as every step of the
 * memory store does first. Costs one index probe when nothing has expired. Inside a
 * caller's transaction it does nothing: reclaiming locks counters, and a unit of
 * admin writes should not hold those locks until it commits.
 *
 * @since 0.1.0
 */
export const reclaimDue = (
  context: RepoContext,
  now: number
): Effect.Effect<void, SqlError | CorruptRecord> =>
  Effect.flatMap(Effect.serviceOption(TransactionConnection), (transaction) =>
    Option.isSome(transaction)
      ? Effect.void
      : Effect.flatMap(Holds.anyExpired(context.sql, now), (due) =>
          due
            ? Effect.asVoid(retryConflicts(Holds.reclaim(context.sql, now, context.holdTtlMillis)))
            : Effect.void
        )
  )

/**
 * Reads back a row the running transaction wrote: its absence is a defect of the
 * store, never a `NotFound` for the caller.
 *
 * @example
 * // const team = yield* written("team", read(teamId, now))
 * @since 0.1.0
 */
export const written = <A, E, R>(
  entity: string,
  read: Effect.Effect<Option.Option<A>, E, R>
): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    read,
    Option.match({ onNone: () => Effect.dieMessage(`${entity} row missing`), onSome: Effect.succeed })
  )
