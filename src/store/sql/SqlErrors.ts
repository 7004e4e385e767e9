/**
 * Where driver failures become the store's typed errors. A SQL store only ever fails
 * with `StoreUnavailable`, `CorruptRecord` or the domain error of the operation;
 * `SqlError`s never leave this directory.
 *
 * @since 0.1.0
 */
import { SafeIntegers } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Either, Metric, Option, ParseResult, Schema } from "effect"
import { CorruptRecord, type EntityKind, StoreUnavailable } from "../../domain/Errors.js"

/** The driver's error code (SQLSTATE on PostgreSQL). @since 0.1.0 */
export const codeOf = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return undefined
  return typeof cause.code === "string" ? cause.code : undefined
}

/** @since 0.1.0 */
export const isSqlError = (u: unknown): u is SqlError =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === "SqlError"

/** A unique or primary key constraint refused the write. @since 0.1.0 */
export const isUniqueViolation = (error: SqlError): boolean => {
  const code = codeOf(error)
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY"
}

/** A `SqlError` from a unique or primary key constraint. @since 0.1.0 */
export const isUniqueSqlError = (u: unknown): u is SqlError => isSqlError(u) && isUniqueViolation(u)

const isRetryableSqlError = (u: unknown): boolean => isSqlError(u) && isRetryable(u)

/** PostgreSQL gave up on a transaction that may simply be run again. @since 0.1.0 */
export const isRetryable = (error: SqlError): boolean => {
  const code = codeOf(error)
  return code === "40P01" || code === "40001"
}

/**
 * The driver error as a cause that is safe to log: the error code and the driver's
 * message, never the `detail` (PostgreSQL puts the conflicting values there, and a
 * value may be a key hash).
 */
const safeCause = (error: SqlError): Error => {
  const cause: unknown = error.cause
  const code = codeOf(error)
  const message = cause instanceof Error ? cause.message : error.message
  return new Error(code === undefined ? message : `${code}: ${message}`)
}

/** @since 0.1.0 */
export const unavailable = (operation: string, error: SqlError): StoreUnavailable =>
  new StoreUnavailable({ operation, cause: safeCause(error) })

/**
 * Real time, for timeouts, retry pauses and watchdogs: how long the database takes
 * is wall-clock time even when a test drives the ambient `Clock` (budget windows and
 * hold expiry always read the ambient one).
 *
 * @since 0.1.0
 */
export const realClock: Clock.Clock = Clock.make()

/**
 * Wraps one store operation: every `SqlError` (including a failed `COMMIT`, which
 * `@effect/sql` raises as a defect) becomes `StoreUnavailable`, and an operation that
 * takes longer than `timeout` (when given: a networked database) fails the same way
 * instead of hanging the request.
 * Integers come back as bigints on SQLite, so money beyond 2^53 stays exact.
 *
 * @since 0.1.0
 */
export const guard = (operation: string, timeout: Option.Option<Duration.Duration>): Guard =>
  function guarded<A, E, R>(
    effect: Effect.Effect<A, E | SqlError, R>
  ): Effect.Effect<A, E | StoreUnavailable, R> {
    const mapped = effect.pipe(
      Effect.catchAll((error): Effect.Effect<never, E | StoreUnavailable> =>
        isSqlError(error) ? Effect.fail(unavailable(operation, error)) : Effect.fail(error)
      ),
      Effect.catchAllDefect((defect) =>
        isSqlError(defect) ? Effect.fail(unavailable(operation, defect)) : Effect.die(defect)
      ),
      Effect.provideService(SafeIntegers, true)
    )
    if (Option.isNone(timeout)) return mapped
    return Effect.raceFirst(
      mapped,
      Effect.zipRight(
        realClock.sleep(timeout.value),
        // Made only on a timeout: an error captures a stack, which every call would pay for.
        Effect.failSync(() => new StoreUnavailable({ operation: `${operation} timed out` }))
      )
    )
  }

/** {@link guard}'s result: a plain `SqlError` effect needs its own signature to infer. @since 0.1.0 */
export interface Guard {
  <A, R>(effect: Effect.Effect<A, SqlError, R>): Effect.Effect<A, StoreUnavailable, R>
  <A, E, R>(effect: Effect.Effect<A, E | SqlError, R>): Effect.Effect<A, E | StoreUnavailable, R>
}

const RETRIES = 4

/**
 * Steps PostgreSQL aborted for a deadlock or a serialization conflict and that were
 * run again. Locks are always taken in key order, so this stays at zero unless
 * something else (a host's own transactions, say) takes them in another order.
 *
 * @since 0.1.0
 */
export const conflictRetries = Metric.counter("teambudget_sql_conflict_retries_total", {
  description: "Store steps aborted by PostgreSQL for a deadlock or serialization conflict and run again",
  incremental: true
})

/**
 * Runs a whole transaction again when PostgreSQL aborted it for a deadlock or a
 * serialization conflict (it rolled back, so nothing was applied).
 *
 * @since 0.1.0
 */
export const retryConflicts = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const attempt = (n: number): Effect.Effect<A, E, R> =>
    Effect.catchIf(
      effect,
      (error) => n < RETRIES && isRetryableSqlError(error),
      () =>
        Effect.zipRight(
          Effect.zipRight(Metric.increment(conflictRetries), realClock.sleep(Duration.millis(5 * 2 ** n))),
          attempt(n + 1)
        )
    )
  return attempt(0)
}

/** The default of {@link guard}'s timeout. @since 0.1.0 */
export const DEFAULT_TIMEOUT = Duration.seconds(10)

const SENSITIVE = new Set(["hash", "key_hash"])

const describe = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const path = issue.path.map(String).join(".")
      const head = issue.path[0]
      const message = typeof head === "string" && SENSITIVE.has(head) ? "is malformed" : issue.message
      return path === "" ? message : `${path}: ${message}`
    })
    .join("; ")

/**
 * A decoder for one kind of row: a row that does not decode fails with
 * `CorruptRecord` naming the entity and the row's id, and only the caller that needed
 * that row sees it.
 *
 * @since 0.1.0
 */
export const rowDecoder = <A, I>(
  entity: EntityKind,
  schema: Schema.Schema<A, I>,
  idOf: (row: Record<string, unknown>) => string
) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
  return (row: Record<string, unknown>): Either.Either<A, CorruptRecord> =>
    Either.mapLeft(
      decode(row),
      (error) => new CorruptRecord({ entity, id: idOf(row), detail: describe(error) })
    )
}

/** The string value of a column, for naming a row that cannot be decoded. @since 0.1.0 */
export const column =
  (name: string) =>
  (row: Record<string, unknown>): string => {
    const value = row[name]
    return typeof value === "string" || typeof value === "number" || typeof value === "bigint"
      ? String(value)
      : "(unknown)"
  }
