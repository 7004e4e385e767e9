/**
 * The rate-limit store of the SQL stores (SPEC 8): counters in the database, so every
 * instance on the same database shares them.
 *
 * Each step is atomic over every rule of its request. On PostgreSQL it is one
 * statement, a call of a function (`PgRateLimits.ts`), so one round trip that holds
 * the bucket locks only while the server runs it (and commits without waiting for the
 * disk: a counter is not money). Elsewhere (SQLite, in process) it is
 * one transaction that locks (making missing ones) and reads the buckets in one
 * statement, reads live leases in two more when a rule is `parallel`, lets the memory
 * store's decision (`RateArithmetic.ts`) run on those rows, and writes every changed
 * TAT in one statement and every lease in another: calls into this process rather
 * than round trips.
 *
 * @since 0.1.0
 */
import { TransactionConnection } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Option, Schema } from "effect"
import { StoreUnavailable } from "../../domain/Errors.js"
import * as MemoryRateLimits from "../memory/MemoryRateLimits.js"
import type {
  RateAcquire,
  RateComplete,
  RateDecision,
  RateLimitStoreShape,
  RateRule
} from "../RateLimitStore.js"
import * as Dialect from "./Dialect.js"
import * as RateLimitRows from "./RateLimitRows.js"
import { guard, retryConflicts } from "./SqlErrors.js"
import * as SqliteRateLimits from "./SqliteRateLimits.js"
import type { RepoContext, Row } from "./SqlSupport.js"

const decodeReply = Schema.decodeUnknownEither(
  Schema.Array(Schema.Union(Schema.Number, Schema.NumberFromString))
)

const malformed = new StoreUnavailable({ operation: "rate limits: unexpected reply from the database" })

/** The PostgreSQL function's answer: `{1, remaining...}` or `{0, index, retryAfter, remaining...}`. */
const fromReply = (
  rows: ReadonlyArray<Row>,
  rules: number
): Either.Either<RateDecision, StoreUnavailable> => {
  const decoded = decodeReply(rows[0]?.["r"])
  if (Either.isLeft(decoded)) return Either.left(malformed)
  const [verdict, ...rest] = decoded.right
  if (verdict === 1 && rest.length === rules) return Either.right({ _tag: "Admitted", remaining: rest })
  const [index, retryAfterMillis, ...remaining] = rest
  if (verdict === 0 && index !== undefined && retryAfterMillis !== undefined && remaining.length === rules) {
    return Either.right({ _tag: "Refused", index, retryAfterMillis, remaining })
  }
  return Either.left(malformed)
}

const columns = (rules: ReadonlyArray<RateRule>) => ({
  buckets: rules.map((rule) => rule.bucket),
  kinds: rules.map((rule) => rule.kind),
  limits: rules.map((rule) => rule.limit)
})

/**
 * Whether a step is its own transaction, so its commit may skip waiting for the disk
 * (`PgRateLimits.ts`); inside a caller's transaction that choice is the caller's.
 */
const ownTransaction = Effect.map(Effect.serviceOption(TransactionConnection), Option.isNone)

/**
 * The embedded store's rate-limit steps (`SqliteRateLimits.ts`) and how they run: in the
 * ledger's batches on the store's connection (`SqliteFastPath.run`).
 *
 * @since 0.1.0
 */
export interface EmbeddedSteps {
  readonly steps: SqliteRateLimits.SqliteRateLimits
  readonly run: <A>(body: () => A) => Effect.Effect<A, SqlError>
}

/**
 * The store over the repositories' client; on the embedded store, each step runs
 * synchronously on its connection with the ledger's (`embedded`).
 *
 * @since 0.1.0
 */
export const make = (
  context: RepoContext,
  embedded: Option.Option<EmbeddedSteps> = Option.none()
): RateLimitStoreShape => {
  const { sql } = context
  const onPg = Dialect.hasFastPath(sql)
  const acquireGuard = guard("rate limits: acquire", context.timeout)
  const completeGuard = guard("rate limits: complete", context.timeout)

  /**
   * Makes missing buckets and locks every bucket, in name order, returning each one's
   * TAT: an upsert that rewrites a row it finds with itself, which locks it.
   */
  const lockBuckets = (rules: ReadonlyArray<RateRule>, now: number) => {
    const buckets = [...new Set(rules.map((rule) => rule.bucket))].sort()
    return Effect.map(
      sql<Row>`INSERT INTO tb_rate_buckets ${sql.insert(buckets.map((bucket) => ({ bucket, tat: now })))}
        ON CONFLICT (bucket) DO UPDATE SET tat = tb_rate_buckets.tat RETURNING bucket, tat`,
      (rows) => new Map(rows.map((row) => [String(row["bucket"]), RateLimitRows.asNumber(row["tat"])]))
    )
  }

  /** The live leases of `buckets`, by bucket and ticket; expired ones are deleted first. */
  const liveLeases = (buckets: ReadonlyArray<string>, now: number) =>
    buckets.length === 0
      ? Effect.succeed(new Map<string, Map<string, number>>())
      : Effect.zipRight(
          sql`DELETE FROM tb_rate_leases WHERE ${sql.in("bucket", buckets)} AND expires_at <= ${now}`,
          Effect.map(
            sql<Row>`SELECT bucket, ticket_id, expires_at FROM tb_rate_leases WHERE ${sql.in("bucket", buckets)}`,
            RateLimitRows.leasesOf
          )
        )

  /** Every new TAT in one statement. */
  const writeTats = (tats: ReadonlyMap<string, number>) =>
    tats.size === 0
      ? Effect.void
      : sql`UPDATE tb_rate_buckets SET tat = CASE bucket ${sql.join(
          " ",
          false
        )([...tats].map(([bucket, tat]) => sql`WHEN ${bucket} THEN ${tat}`))} END
          WHERE ${sql.in("bucket", [...tats.keys()])}`

  const insertLeases = (buckets: ReadonlyArray<string>, request: RateAcquire) =>
    buckets.length === 0
      ? Effect.void
      : sql`INSERT INTO tb_rate_leases ${sql.insert(
          buckets.map((bucket) => ({
            bucket,
            ticket_id: request.ticketId,
            expires_at: request.now + request.leaseMillis
          }))
        )} ON CONFLICT (bucket, ticket_id) DO UPDATE SET expires_at = excluded.expires_at`

  // The decisions are the memory store's, run on the rows just locked.
  const portableAcquire = (request: RateAcquire) => {
    const leased = RateLimitRows.parallelBuckets(request.rules)
    return sql.withTransaction(
      Effect.flatMap(
        Effect.zip(lockBuckets(request.rules, request.now), liveLeases(leased, request.now)),
        ([stored, leases]): Effect.Effect<RateDecision, SqlError> => {
          const state = { tats: new Map(stored), leases }
          const decision = MemoryRateLimits.acquire(state, request)
          return decision._tag === "Admitted"
            ? Effect.as(
                Effect.zipRight(
                  writeTats(RateLimitRows.changedTats(request.rules, stored, state, request.now)),
                  insertLeases(leased, request)
                ),
                decision
              )
            : Effect.succeed(decision)
        }
      )
    )
  }

  const portableComplete = (request: RateComplete) =>
    sql.withTransaction(
      Effect.flatMap(lockBuckets(request.rules, request.now), (stored) => {
        const state = { tats: new Map(stored), leases: new Map<string, Map<string, number>>() }
        MemoryRateLimits.complete(state, request)
        const leased = RateLimitRows.parallelBuckets(request.rules)
        return Effect.zipRight(
          writeTats(RateLimitRows.changedTats(request.rules, stored, state, request.now)),
          leased.length === 0
            ? Effect.void
            : sql`DELETE FROM tb_rate_leases WHERE ${sql.in("bucket", leased)}
                AND (ticket_id = ${request.ticketId} OR expires_at <= ${request.now})`
        )
      })
    )

  const pgAcquire = (request: RateAcquire) => {
    const { buckets, kinds, limits } = columns(request.rules)
    return Effect.flatMap(
      Effect.flatMap(
        ownTransaction,
        (async) => sql<Row>`SELECT tb_rate_acquire(${buckets}::text[], ${kinds}::text[], ${limits}::float8[],
        ${request.tokens}::float8, ${request.now}::float8, ${request.leaseMillis}::float8, ${request.ticketId},
        ${async}) AS r`
      ),
      (rows) =>
        Either.match(fromReply(rows, request.rules.length), { onLeft: Effect.fail, onRight: Effect.succeed })
    )
  }

  const pgComplete = (request: RateComplete) => {
    const { buckets, kinds, limits } = columns(request.rules)
    return Effect.asVoid(
      Effect.flatMap(
        ownTransaction,
        (async) => sql`SELECT tb_rate_complete(${buckets}::text[], ${kinds}::text[], ${limits}::float8[],
        ${request.tokensDelta}::float8, ${request.refundRequest}, ${request.now}::float8, ${request.ticketId},
        ${async})`
      )
    )
  }

  const synchronous = <A>(
    step: (steps: SqliteRateLimits.SqliteRateLimits) => A,
    otherwise: Effect.Effect<A, SqlError | StoreUnavailable>
  ): Effect.Effect<A, SqlError | StoreUnavailable> =>
    Option.match(embedded, {
      onNone: () => otherwise,
      onSome: ({ steps, run }) => run(() => step(steps))
    })

  return {
    acquire: (request) =>
      request.rules.length === 0
        ? Effect.succeed({ _tag: "Admitted", remaining: [] })
        : acquireGuard(
            retryConflicts(
              onPg
                ? pgAcquire(request)
                : synchronous((steps) => steps.acquire(request), portableAcquire(request))
            )
          ),
    complete: (request) =>
      request.rules.length === 0
        ? Effect.void
        : completeGuard(
            retryConflicts(
              onPg
                ? pgComplete(request)
                : synchronous((steps) => steps.complete(request), portableComplete(request))
            )
          )
  }
}
