/**
 * The SQL stores: every store service on `@effect/sql`, written once and run by
 * `@effect/sql-pg` for PostgreSQL (the store of record, shared by several instances)
 * or by the store's own client over better-sqlite3 for the embedded default (SPEC 10;
 * `SqliteConnection.ts`).
 *
 * - Money is exact (integer nano-dollars), and every row read is decoded through the
 *   domain schemas; a row that cannot be decoded fails only the requests that need it,
 *   with `CorruptRecord`.
 * - A hold, a settle and a release are each one atomic step over every scope of the
 *   request, window reset included; the spend log row is written with the counters.
 *   On PostgreSQL the steady state costs one round trip per step.
 * - Budgets and spend are never cached. When the database cannot be reached, every
 *   operation fails with `StoreUnavailable` (HTTP 503) and the store recovers by itself
 *   once it is back.
 *
 * @since 0.1.0
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Clock, Config, type ConfigError, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { StoreUnavailable } from "../../domain/Errors.js"
import { Invalidation, layerLocal } from "../../services/Invalidation.js"
import { BudgetRepo } from "../BudgetRepo.js"
import { EndUserRepo } from "../EndUserRepo.js"
import { EventClaims } from "../EventClaims.js"
import { KeyRepo } from "../KeyRepo.js"
import { MembershipRepo } from "../MembershipRepo.js"
import * as MemoryStore from "../memory/MemoryStore.js"
import { OrganizationRepo } from "../OrganizationRepo.js"
import { RateLimitStore } from "../RateLimitStore.js"
import { SpendLedger } from "../SpendLedger.js"
import { SpendLogRepo } from "../SpendLogRepo.js"
import type { StoreServices } from "../StoreServices.js"
import { StoreTransaction } from "../StoreTransaction.js"
import { TeamRepo } from "../TeamRepo.js"
import { UserRepo } from "../UserRepo.js"
import * as Dialect from "./Dialect.js"
import * as Holds from "./Holds.js"
import * as Migrations from "./Migrations.js"
import * as PgInvalidation from "./PgInvalidation.js"
import * as SqlBudgetRepo from "./SqlBudgetRepo.js"
import * as SqlEndUserRepo from "./SqlEndUserRepo.js"
import * as SqlEventClaims from "./SqlEventClaims.js"
import { DEFAULT_TIMEOUT, guard, realClock, unavailable } from "./SqlErrors.js"
import * as SqlKeyRepo from "./SqlKeyRepo.js"
import * as SqlLedger from "./SqlLedger.js"
import * as SqlMembershipRepo from "./SqlMembershipRepo.js"
import * as SqlOrganizationRepo from "./SqlOrganizationRepo.js"
import * as SqliteConnection from "./SqliteConnection.js"
import * as SqliteRateLimits from "./SqliteRateLimits.js"
import * as SqlRateLimits from "./SqlRateLimits.js"
import * as SqlSpendLogRepo from "./SqlSpendLogRepo.js"
import type { RepoContext } from "./SqlSupport.js"
import * as SqlTeamRepo from "./SqlTeamRepo.js"
import * as SqlUserRepo from "./SqlUserRepo.js"
import * as SqlTransaction from "./SqlTransaction.js"

/** @since 0.1.0 */
export interface SqlStoreOptions {
  /** Bring the schema up to date when the layer starts. Default `true`. */
  readonly migrate?: boolean
  /** How long a hold lives before its money is reclaimed. Default 15 minutes. */
  readonly holdTtl?: Duration.DurationInput
  /** A PostgreSQL operation that takes longer fails with `StoreUnavailable`. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput
  /** How often closed holds older than a few TTLs are deleted. Default 5 minutes. */
  readonly pruneEvery?: Duration.DurationInput
  /**
   * Let holds and settles that wait at the same moment share one transaction (group
   * commit), so one durable commit serves many requests. Default `true`. On the
   * embedded SQLite store (`sqliteClient`, `layerSqlite`) the steps are synchronous
   * transactions, and this shares one among those queued in the same turn of the
   * event loop; without it each step commits alone.
   */
  readonly groupCommit?: boolean
  /**
   * SQLite only: `"normal"` (the default, with the write-ahead log) keeps every commit
   * across a crash of the process, but the last commits before a power loss or an
   * operating system crash may be lost; `"full"` syncs every commit to disk, at the
   * cost of one disk flush per commit.
   */
  readonly synchronous?: "normal" | "full"
}

/** The migrations, for running them apart from a store layer (`teambudget migrate`). @since 0.1.0 */
export const migrate = Migrations.migrate

/** The name of the table that records applied migrations. @since 0.1.0 */
export const MIGRATIONS_TABLE = Migrations.MIGRATIONS_TABLE

const DEFAULT_HOLD_TTL = Duration.minutes(15)
const DEFAULT_PRUNE_EVERY = Duration.minutes(5)

/**
 * Every store service over the `SqlClient` in context (PostgreSQL or SQLite), so a
 * host application can hand in the client (or pool) it already has.
 *
 * @example
 * import { Layer, Redacted } from "effect"
 * import { PgClient } from "@effect/sql-pg"
 * import { SqlStore } from "teambudget"
 *
 * const store = SqlStore.layer({ holdTtl: "5 minutes" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "") }))
 * )
 * @since 0.1.0
 */
export const layer = (
  options: SqlStoreOptions = {}
): Layer.Layer<StoreServices, StoreUnavailable, SqlClient> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const sql = (yield* SqlClient).withoutTransforms()
      // Only a networked database can hang a request; SQLite runs in this process.
      const timeout = Dialect.hasRowLocks(sql)
        ? Option.some(Duration.decode(options.timeout ?? DEFAULT_TIMEOUT))
        : Option.none()
      const holdTtlMillis = Duration.toMillis(Duration.decode(options.holdTtl ?? DEFAULT_HOLD_TTL))
      yield* guard("connect", timeout)(Dialect.prepareConnection(sql))
      if (options.synchronous === "full") {
        yield* guard(
          "connect",
          timeout
        )(
          sql.onDialectOrElse({
            sqlite: () => Effect.asVoid(sql`PRAGMA synchronous = FULL`),
            orElse: () => Effect.void
          })
        )
      }
      if (options.migrate ?? true) yield* Effect.provideService(Migrations.migrate, SqlClient, sql)
      const context: RepoContext = { sql, timeout, holdTtlMillis }
      const { ledger, sqliteSteps } = yield* Effect.provideService(
        SqlLedger.make({ holdTtlMillis, timeout, groupCommit: options.groupCommit ?? true }),
        SqlClient,
        sql
      )
      const embedded = Option.zipWith(
        yield* Effect.serviceOption(SqliteConnection.SqliteDatabase),
        sqliteSteps,
        (db, run) => ({ steps: SqliteRateLimits.make(db), run })
      )

      // Physical clean-up only: closed holds this old already read as forgotten. It waits in
      // real time, so a test that moves the ambient clock by years does not run it a million times.
      const pruneEvery = Duration.decode(options.pruneEvery ?? DEFAULT_PRUNE_EVERY)
      yield* Effect.gen(function* () {
        for (;;) {
          yield* realClock.sleep(pruneEvery)
          const cutoff = (yield* Clock.currentTimeMillis) - Holds.CLOSED_HOLD_TTLS * holdTtlMillis
          yield* sql`DELETE FROM tb_holds WHERE state <> 'open' AND closed_at < ${cutoff}`.pipe(
            Effect.catchAllCause((cause) => Effect.logDebug("Pruning closed holds failed", cause))
          )
          // Expired parallel leases count for nothing already; a bucket nobody uses again keeps them.
          yield* sql`DELETE FROM tb_rate_leases WHERE expires_at <= ${yield* Clock.currentTimeMillis}`.pipe(
            Effect.catchAllCause((cause) =>
              Effect.logDebug("Pruning expired rate-limit leases failed", cause)
            )
          )
        }
      }).pipe(Effect.forkScoped)

      return Context.make(TeamRepo, SqlTeamRepo.make(context)).pipe(
        Context.add(UserRepo, SqlUserRepo.make(context)),
        Context.add(OrganizationRepo, SqlOrganizationRepo.make(context)),
        Context.add(EndUserRepo, SqlEndUserRepo.make(context)),
        Context.add(KeyRepo, SqlKeyRepo.make(context)),
        Context.add(MembershipRepo, SqlMembershipRepo.make(context)),
        Context.add(BudgetRepo, SqlBudgetRepo.make(context)),
        Context.add(SpendLogRepo, SqlSpendLogRepo.make(context)),
        Context.add(SpendLedger, ledger),
        Context.add(RateLimitStore, SqlRateLimits.make(context, embedded)),
        Context.add(StoreTransaction, SqlTransaction.make(sql, timeout)),
        Context.add(EventClaims, SqlEventClaims.make(context))
      )
    })
  )

/**
 * A PostgreSQL client whose connection failure is a `StoreUnavailable`. The pool
 * connects at start-up and reconnects by itself after an outage.
 *
 * @since 0.1.0
 */
export const pgClient = (
  config: PgClient.PgClientConfig
): Layer.Layer<PgClient.PgClient | SqlClient, StoreUnavailable> =>
  PgClient.layer({ applicationName: "teambudget", ...config }).pipe(
    Layer.mapError((error) => unavailable("connect", error))
  )

/** @since 0.1.0 */
export interface SqliteOptions extends SqlStoreOptions {
  /** The database file (its directory is made when missing), or `:memory:`. */
  readonly filename: string
}

/**
 * An SQLite client on a file (its directory made when missing) or `:memory:`, with
 * the write-ahead log. It also hands the store its better-sqlite3 connection, on which
 * holds and settles run as synchronous transactions (`SqliteConnection.ts`).
 *
 * @example
 * import { Layer } from "effect"
 * import { SqlStore } from "teambudget"
 *
 * const store = SqlStore.layer({ synchronous: "full" }).pipe(
 *   Layer.provide(SqlStore.sqliteClient({ filename: "budget.db" }))
 * )
 * @since 0.1.0
 */
export const sqliteClient = (options: {
  readonly filename: string
}): Layer.Layer<SqliteConnection.SqliteDatabase | SqlClient, StoreUnavailable> =>
  Layer.unwrapEffect(
    Effect.try({
      try: () => {
        if (options.filename !== ":memory:" && options.filename !== "") {
          mkdirSync(dirname(options.filename), { recursive: true })
        }
        return SqliteConnection.layer({ filename: options.filename })
      },
      catch: (cause) =>
        new StoreUnavailable({
          operation: "open the SQLite database",
          cause: cause instanceof Error ? cause : undefined
        })
    })
  ).pipe(
    Layer.catchAll((error) =>
      Layer.fail(error instanceof StoreUnavailable ? error : unavailable("open the SQLite database", error))
    )
  )

/**
 * The PostgreSQL store with cross-instance key-cache invalidation: every store
 * service and an `Invalidation` bridged through `LISTEN`/`NOTIFY`, on one pool.
 *
 * @example
 * import { Redacted } from "effect"
 * import { SqlStore } from "teambudget"
 *
 * const store = SqlStore.layerPg({ url: Redacted.make("postgres://app@db/teambudget"), maxConnections: 20 })
 * @since 0.1.0
 */
export const layerPg = (
  options: PgClient.PgClientConfig & SqlStoreOptions & PgInvalidation.PgInvalidationOptions
): Layer.Layer<StoreServices | Invalidation, StoreUnavailable> =>
  Layer.merge(layer(options), PgInvalidation.layer(options)).pipe(Layer.provide(pgClient(options)))

/**
 * {@link layerPg} with the URL read from `DATABASE_URL` (kept `Redacted`).
 *
 * @since 0.1.0
 */
export const layerPgConfig = (
  options: Omit<PgClient.PgClientConfig, "url"> & SqlStoreOptions = {}
): Layer.Layer<StoreServices | Invalidation, StoreUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.redacted("DATABASE_URL"), (url) => layerPg({ ...options, url })))

/**
 * The embedded SQLite store (one process), with in-process invalidation.
 *
 * @example
 * import { SqlStore } from "teambudget"
 *
 * const store = SqlStore.layerSqlite({ filename: ".teambudget/teambudget.db" })
 * @since 0.1.0
 */
export const layerSqlite = (
  options: SqliteOptions
): Layer.Layer<StoreServices | Invalidation, StoreUnavailable> =>
  Layer.merge(layer(options).pipe(Layer.provide(sqliteClient(options))), layerLocal)

/** Where the embedded store lives when nothing else is configured (SPEC 11.3). @since 0.1.0 */
export const DEFAULT_SQLITE_FILE = ".teambudget/teambudget.db"

/**
 * The spend-log rows a memory store opened by URL keeps, newest first, when the URL
 * does not say: a long-running process (the proxy on `memory:`) would otherwise grow
 * without bound. The counters keep every request; only the log is trimmed. Choose
 * another bound with `memory:?spend_log_capacity=N`.
 *
 * @since 0.1.0
 */
export const MEMORY_URL_SPEND_LOG_CAPACITY = 100_000

const MAX_SPEND_LOG_CAPACITY = 100_000_000

/** The capacity the text after `memory:` asks for, or `undefined` when it is not of the accepted form. */
const memorySpendLogCapacity = (rest: string): number | undefined => {
  if (rest === "") return MEMORY_URL_SPEND_LOG_CAPACITY
  const match = /^\?spend_log_capacity=([0-9]{1,9})$/.exec(rest)
  const capacity = match?.[1] === undefined ? 0 : Number(match[1])
  return capacity >= 1 && capacity <= MAX_SPEND_LOG_CAPACITY ? capacity : undefined
}

/**
 * The store a URL names: `postgres://` or `postgresql://` for PostgreSQL,
 * `sqlite:PATH` for the embedded store at PATH (`sqlite::memory:` in memory), `memory:`
 * for the memory store (keeping the newest {@link MEMORY_URL_SPEND_LOG_CAPACITY} spend-log
 * rows, or N with `memory:?spend_log_capacity=N`). An unknown scheme fails without
 * echoing the URL, which may hold a password.
 *
 * @example
 * import { SqlStore } from "teambudget"
 *
 * const store = SqlStore.layerFromUrl(process.env.DATABASE_URL ?? "sqlite:.teambudget/teambudget.db")
 * @since 0.1.0
 */
export const layerFromUrl = (
  url: string,
  options: SqlStoreOptions = {}
): Layer.Layer<StoreServices | Invalidation, StoreUnavailable> => {
  if (/^postgres(ql)?:\/\//i.test(url)) return layerPg({ ...options, url: Redacted.make(url) })
  if (/^sqlite:/i.test(url)) {
    const path = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "")
    return layerSqlite({ ...options, filename: path === "" ? DEFAULT_SQLITE_FILE : path })
  }
  if (/^memory:/i.test(url)) {
    const capacity = memorySpendLogCapacity(url.slice("memory:".length))
    if (capacity === undefined)
      return Layer.fail(
        new StoreUnavailable({
          operation: `open the store: a memory store URL is memory: or memory:?spend_log_capacity=N, where N is a whole number of rows from 1 to ${MAX_SPEND_LOG_CAPACITY}`
        })
      )
    return Layer.merge(
      MemoryStore.layer({
        spendLogCapacity: capacity,
        ...(options.holdTtl === undefined ? {} : { holdTtl: options.holdTtl })
      }),
      layerLocal
    )
  }
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? "(none)"
  return Layer.fail(
    new StoreUnavailable({
      operation: `open the store: DATABASE_URL scheme ${scheme} is not one of postgres:, postgresql:, sqlite:, memory:`
    })
  )
}

/**
 * The store named by `DATABASE_URL` (read as a secret), or the embedded store at
 * {@link DEFAULT_SQLITE_FILE} when it is not set.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: SqlStoreOptions = {}
): Layer.Layer<StoreServices | Invalidation, StoreUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(Config.option(Config.redacted("DATABASE_URL")), (url) =>
      layerFromUrl(
        Option.match(url, { onNone: () => `sqlite:${DEFAULT_SQLITE_FILE}`, onSome: Redacted.value }),
        options
      )
    )
  )

/**
 * `Invalidation` through PostgreSQL `LISTEN`/`NOTIFY`, for a host that builds its own
 * `PgClient` (included in {@link layerPg}).
 *
 * @since 0.1.0
 */
export const layerPgInvalidation = PgInvalidation.layer

export type { PgInvalidationOptions } from "./PgInvalidation.js"
