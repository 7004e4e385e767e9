/**
 * The schema of the SQL stores, as migrations run by `@effect/sql`'s migrator. They
 * are compiled into the package (no files to find at run time) and written once for
 * both dialects; `Dialect.ts` supplies the few words that differ.
 *
 * Money columns are exact integers of nano-dollars; times are epoch milliseconds
 * taken from Effect's `Clock`, never from the database, so every store sees the same
 * time. JSON values are text, so a malformed value reads as a `CorruptRecord` instead
 * of failing the write of an unrelated row.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { StoreUnavailable } from "../../domain/Errors.js"
import * as Dialect from "./Dialect.js"
import * as PgLedgerBatch from "./PgLedgerBatch.js"
import * as PgRateLimits from "./PgRateLimits.js"
import * as SqliteSpendLogIndex from "./SqliteSpendLogIndex.js"

/** The table where applied migrations are recorded. @since 0.1.0 */
export const MIGRATIONS_TABLE = "teambudget_migrations"

const LIMIT_COLUMNS = `
  max_budget BIGINT,
  soft_budget BIGINT,
  budget_duration TEXT,
  tpm_limit BIGINT,
  rpm_limit BIGINT,
  max_parallel_requests BIGINT`

const initial = Effect.gen(function* () {
  const sql = yield* SqlClient
  const run = (text: string) => sql.unsafe(text)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_organizations (
  organization_id TEXT PRIMARY KEY,
  organization_alias TEXT NOT NULL,${LIMIT_COLUMNS},
  models TEXT NOT NULL,
  blocked SMALLINT NOT NULL,
  created_at BIGINT NOT NULL
)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_teams (
  team_id TEXT PRIMARY KEY,
  team_alias TEXT NOT NULL,
  organization_id TEXT,${LIMIT_COLUMNS},
  models TEXT NOT NULL,
  blocked SMALLINT NOT NULL,
  metadata TEXT NOT NULL,
  created_at BIGINT NOT NULL
)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_users (
  user_id TEXT PRIMARY KEY,
  user_email TEXT,
  user_role TEXT NOT NULL,${LIMIT_COLUMNS},
  models TEXT NOT NULL,
  blocked SMALLINT NOT NULL,
  metadata TEXT NOT NULL,
  created_at BIGINT NOT NULL
)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_budgets (
  budget_id TEXT PRIMARY KEY,${LIMIT_COLUMNS},
  created_at BIGINT NOT NULL
)`)
  // A member's own budget is a nullable link: NULL means "no cap of their own".
  yield* run(`CREATE TABLE IF NOT EXISTS tb_memberships (
  team_id TEXT NOT NULL REFERENCES tb_teams (team_id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES tb_users (user_id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  budget_id TEXT REFERENCES tb_budgets (budget_id) ON DELETE SET NULL,
  scope_key TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (team_id, user_id)
)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_memberships_user ON tb_memberships (user_id)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_memberships_budget ON tb_memberships (budget_id)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_keys (
  hash TEXT PRIMARY KEY,
  key_id TEXT NOT NULL UNIQUE,
  key_alias TEXT,
  display_prefix TEXT NOT NULL,
  user_id TEXT,
  team_id TEXT,${LIMIT_COLUMNS},
  models TEXT NOT NULL,
  expires BIGINT,
  blocked SMALLINT NOT NULL,
  metadata TEXT NOT NULL,
  created_at BIGINT NOT NULL
)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_keys_team ON tb_keys (team_id)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_keys_user ON tb_keys (user_id)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_end_users (
  end_user_id TEXT PRIMARY KEY,${LIMIT_COLUMNS},
  blocked SMALLINT NOT NULL,
  created_at BIGINT NOT NULL
)`)
  // One row per scope (Scope.key). The cap and window length are copies of the
  // scope's limits, written in the same transaction as the entity, so a ledger step
  // reads and writes this one table only.
  yield* run(`CREATE TABLE IF NOT EXISTS tb_counters (
  scope_key TEXT PRIMARY KEY,
  total BIGINT NOT NULL,
  window_spend BIGINT NOT NULL,
  held BIGINT NOT NULL,
  anchor BIGINT NOT NULL,
  window_start BIGINT NOT NULL,
  window_end BIGINT,
  max_budget BIGINT,
  budget_duration TEXT
)`)
  yield* run(`CREATE TABLE IF NOT EXISTS tb_holds (
  hold_id TEXT PRIMARY KEY,
  scope_keys TEXT NOT NULL,
  amount BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  state TEXT NOT NULL,
  closed_at BIGINT
)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_holds_open ON tb_holds (expires_at) WHERE state = 'open'`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_holds_closed ON tb_holds (closed_at) WHERE state <> 'open'`)
  yield* sql`CREATE TABLE IF NOT EXISTS tb_spend_logs (
  ${Dialect.identityColumn(sql, "id")},
  request_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  key_label TEXT NOT NULL,
  user_id TEXT,
  team_id TEXT,
  organization_id TEXT,
  end_user TEXT,
  model TEXT NOT NULL,
  prompt_tokens BIGINT NOT NULL,
  completion_tokens BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT NOT NULL,
  status TEXT NOT NULL
)`
  yield* run(`CREATE INDEX IF NOT EXISTS tb_spend_logs_started ON tb_spend_logs (started_at)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_spend_logs_key ON tb_spend_logs (key_id, started_at)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_spend_logs_user ON tb_spend_logs (user_id, started_at)`)
  yield* run(`CREATE INDEX IF NOT EXISTS tb_spend_logs_team ON tb_spend_logs (team_id, started_at)`)
})

// Budget events: the claim that makes one instance publish each crossing, and the index
// the key-expiry scan reads.
const budgetEvents = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS tb_event_claims (
  event_id TEXT PRIMARY KEY,
  claimed_at BIGINT NOT NULL,
  expires_at BIGINT
)`)
  yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS tb_event_claims_expires ON tb_event_claims (expires_at)`)
  yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS tb_keys_expires ON tb_keys (expires)`)
})

// Rate-limit counters (SPEC 8): one TAT per requests or tokens bucket, one row per
// parallel lease. A bucket's row is also the lock every step on that bucket takes.
const rateLimits = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS tb_rate_buckets (
  bucket TEXT PRIMARY KEY,
  tat DOUBLE PRECISION NOT NULL
)`)
  yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS tb_rate_leases (
  bucket TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (bucket, ticket_id)
)`)
  if (Dialect.hasFastPath(sql)) yield* PgRateLimits.install(sql)
})

// A refusal reports what every rule has left, not only the refusing one (the 429's
// headers). SQLite decides in process and has nothing to replace.
const rateRefusalRemaining = Effect.flatMap(SqlClient, (sql) =>
  Dialect.hasFastPath(sql) ? PgRateLimits.replaceAcquire(sql) : Effect.void
)

// The group-commit batch of the ledger as one function call on PostgreSQL (one round
// trip per batch); SQLite runs its batch in process.
const ledgerBatch = Effect.flatMap(SqlClient, (sql) =>
  Dialect.hasFastPath(sql) ? PgLedgerBatch.install(sql) : Effect.void
)

// SQLite indexes the spend log's filters in bulk (see `SqliteSpendLogIndex.ts`);
// PostgreSQL keeps its row-by-row indexes.
const spendLogSideIndex = Effect.flatMap(SqlClient, (sql) =>
  sql.onDialectOrElse({ sqlite: () => SqliteSpendLogIndex.install(sql), orElse: () => Effect.void })
)

/**
 * Every migration, by `<id>_<name>`. Ids only grow: the migrator runs those above
 * the latest one applied.
 *
 * @since 0.1.0
 */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient>> = {
  "1_initial": initial,
  "2_rate_limits": rateLimits,
  "3_budget_events": budgetEvents,
  "4_ledger_batch": ledgerBatch,
  "5_rate_refusal_remaining": rateRefusalRemaining,
  "6_spend_log_side_index": spendLogSideIndex
}

const migrator = Migrator.make({})

const describe = (failure: unknown): string => {
  if (failure instanceof Migrator.MigrationError) {
    const inner: unknown = failure.cause
    const detail =
      typeof inner === "object" && inner !== null && "cause" in inner && inner.cause instanceof Error
        ? `: ${inner.cause.message}`
        : inner instanceof Error
          ? `: ${inner.message}`
          : ""
    return `${failure.message}${detail}`
  }
  if (typeof failure === "object" && failure !== null && "_tag" in failure && failure._tag === "SqlError") {
    const cause: unknown = "cause" in failure ? failure.cause : undefined
    return cause instanceof Error ? cause.message : "SQL error"
  }
  return failure instanceof Error ? failure.message : String(failure)
}

const failed = (failure: unknown) =>
  Effect.fail(new StoreUnavailable({ operation: `migrate: ${describe(failure)}` }))

/**
 * Brings the schema up to date; returns the migrations it applied (none when it was
 * current). Concurrent runs wait for each other. Any failure, including a failing
 * migration (which the migrator raises as a defect), is a `StoreUnavailable`
 * naming the migration, and nothing of that run is kept.
 *
 * @example
 * import { Effect } from "effect"
 * import { SqlStore } from "teambudget"
 *
 * const applied = Effect.runPromise(
 *   SqlStore.migrate.pipe(Effect.provide(SqlStore.sqliteClient({ filename: "budget.db" })))
 * )
 * @since 0.1.0
 */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  StoreUnavailable,
  SqlClient
> = Effect.gen(function* () {
  const sql = yield* SqlClient
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      yield* Dialect.prepareMigrations(sql, MIGRATIONS_TABLE)
      return yield* migrator({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })
    })
  )
}).pipe(Effect.catchAll(failed), Effect.catchAllDefect(failed), Effect.withSpan("SqlStore.migrate"))
