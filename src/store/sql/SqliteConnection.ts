/**
 * The embedded store's SQLite connection: one better-sqlite3 database, opened here and
 * shared by the `SqlClient` every repository uses and by the ledger's synchronous
 * steps (`SqliteFastPath.ts`), so both see the same data on the same connection.
 *
 * Sharing one connection is what keeps them apart: better-sqlite3 runs each statement
 * to completion on the calling thread, so a synchronous transaction never interleaves
 * with anything; the client's own transactions span several fibers' turns, and while
 * one is open (`inTransaction`) the ledger goes through the client instead. A second
 * connection would instead meet the first one's write lock and wait for it while
 * blocking the very thread that must finish it, and could not open `:memory:` at all.
 *
 * The database runs with the write-ahead log, checkpointed from a worker thread
 * (`SqliteCheckpointer.ts`) so that the thread serving requests does not copy it.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Client from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import Database from "better-sqlite3"
import { Context, Effect, Layer, Scope, Stream } from "effect"
import * as SqliteCheckpointer from "./SqliteCheckpointer.js"

/**
 * The better-sqlite3 database under the SQLite `SqlClient`, for the steps that run on
 * it synchronously.
 *
 * @example
 * import { Effect } from "effect"
 * import { SqliteDatabase } from "./SqliteConnection.js"
 *
 * const inTransaction = Effect.map(SqliteDatabase, (db) => db.inTransaction)
 * @since 0.1.0
 */
export class SqliteDatabase extends Context.Tag("teambudget/SqliteDatabase")<
  SqliteDatabase,
  Database.Database
>() {}

/** @since 0.1.0 */
export interface SqliteConnectionOptions {
  /** The database file, or `:memory:`. */
  readonly filename: string
}

/** Prepared statements kept per SQL text; the store's texts are few, so a cache rarely fills. */
const CACHE_SIZE = 500

/**
 * Statements of `db`, prepared on first use and kept by their text; past a few hundred
 * distinct texts the cache starts again empty. With `exactIntegers`, they read integers
 * as bigints (money beyond 2^53 comes back exact). The client, the ledger's synchronous
 * steps and the rate limits' each keep one.
 *
 * @example
 * const statement = preparedStatements(db)
 * statement("SELECT 1 AS one").get()
 * @since 0.1.0
 */
export const preparedStatements = (
  db: Database.Database,
  options: { readonly exactIntegers?: boolean } = {}
): ((source: string) => Database.Statement) => {
  const cache = new Map<string, Database.Statement>()
  return (source) => {
    let statement = cache.get(source)
    if (statement === undefined) {
      if (cache.size >= CACHE_SIZE) cache.clear()
      statement = db.prepare(source)
      if (options.exactIntegers === true) statement.safeIntegers(true)
      cache.set(source, statement)
    }
    return statement
  }
}

const failed = (message: string) => (cause: unknown) => new SqlError({ cause, message })

const connectionOf = (db: Database.Database): Connection => {
  const prepare = preparedStatements(db)
  const run = (
    prepared: () => Database.Statement,
    params: ReadonlyArray<unknown>,
    raw: boolean
  ): Effect.Effect<ReadonlyArray<Record<string, unknown>> | Database.RunResult, SqlError> =>
    Effect.withFiberRuntime((fiber) => {
      try {
        const statement = prepared()
        statement.safeIntegers(Context.get(fiber.currentContext, Client.SafeIntegers))
        if (statement.reader) return Effect.succeed(statement.all(...params))
        const result = statement.run(...params)
        return Effect.succeed(raw ? result : [])
      } catch (cause) {
        return Effect.fail(new SqlError({ cause, message: "Failed to execute statement" }))
      }
    })
  const rows = (effect: ReturnType<typeof run>) =>
    Effect.map(effect, (result) => (Array.isArray(result) ? result : []))
  return {
    execute: (sql, params, transformRows) => {
      const effect = rows(run(() => prepare(sql), params, false))
      return transformRows === undefined ? effect : Effect.map(effect, transformRows)
    },
    executeRaw: (sql, params) => run(() => prepare(sql), params, true),
    executeUnprepared: (sql, params, transformRows) => {
      const effect = rows(run(() => db.prepare(sql), params, false))
      return transformRows === undefined ? effect : Effect.map(effect, transformRows)
    },
    executeValues: (sql, params) =>
      Effect.try({
        try: () => {
          const statement = prepare(sql)
          if (!statement.reader) {
            statement.run(...params)
            return []
          }
          try {
            return statement
              .raw(true)
              .all(...params)
              .map((row) => Object.values(row))
          } finally {
            statement.raw(false)
          }
        },
        catch: failed("Failed to execute statement")
      }),
    executeStream: () => Stream.dieMessage("executeStream not implemented")
  }
}

/**
 * Opens the database and builds the `SqlClient` over it; both close with the scope.
 *
 * @since 0.1.0
 */
export const make = (
  options: SqliteConnectionOptions
): Effect.Effect<
  { readonly client: Client.SqlClient; readonly db: Database.Database },
  SqlError,
  Scope.Scope | Reactivity.Reactivity
> =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({ try: () => new Database(options.filename), catch: failed("Failed to open the database") }),
      (db) => Effect.sync(() => db.close())
    )
    yield* Effect.try({
      try: () => {
        // The other settings (foreign keys, busy timeout, `synchronous`) come with the store: Dialect.ts.
        db.pragma("journal_mode = WAL")
      },
      catch: failed("Failed to configure the database")
    })
    // Released before the database closes (finalizers run in reverse order).
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => SqliteCheckpointer.start(db, options.filename),
        catch: failed("Failed to configure the database")
      }),
      (stop) => (stop === undefined ? Effect.void : Effect.promise(stop))
    )
    const connection = connectionOf(db)
    const semaphore = yield* Effect.makeSemaphore(1)
    const client = yield* Client.make({
      acquirer: semaphore.withPermits(1)(Effect.succeed(connection)),
      // The permit is held until the transaction's scope closes, so its statements never mix with others.
      transactionAcquirer: Effect.uninterruptibleMask((restore) =>
        Effect.as(
          Effect.zipRight(
            restore(semaphore.take(1)),
            Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1)))
          ),
          connection
        )
      ),
      compiler: Statement.makeCompilerSqlite(),
      spanAttributes: [["db.system.name", "sqlite"]]
    })
    return { client, db }
  })

/**
 * The `SqlClient` and the {@link SqliteDatabase} under it, on one connection.
 *
 * @example
 * import * as SqliteConnection from "./SqliteConnection.js"
 *
 * const sqlite = SqliteConnection.layer({ filename: ".teambudget/teambudget.db" })
 * @since 0.1.0
 */
export const layer = (
  options: SqliteConnectionOptions
): Layer.Layer<Client.SqlClient | SqliteDatabase, SqlError> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ client, db }) =>
      Context.make(Client.SqlClient, client).pipe(Context.add(SqliteDatabase, db))
    )
  ).pipe(Layer.provide(Reactivity.layer))
