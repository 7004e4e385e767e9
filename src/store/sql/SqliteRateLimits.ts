/**
 * The rate-limit steps of the embedded SQLite store, run synchronously by
 * better-sqlite3 on the store's own connection in the ledger's batches
 * (`SqliteFastPath.run`): each step makes missing buckets, reads their TATs and live
 * leases, lets the memory store's decision (`RateArithmetic.ts` through
 * `MemoryRateLimits.ts`) run on those rows, and writes what changed. The steps waiting
 * at the same moment, the ledger's and these, share one transaction and one commit;
 * nothing can run between the statements of a synchronous transaction, and another
 * process on the same file waits for the write lock before anything is read. Being
 * part of the batch, their writes also leave the ledger's cached counters valid.
 *
 * @since 0.1.0
 */
import type Database from "better-sqlite3"
import * as MemoryRateLimits from "../memory/MemoryRateLimits.js"
import type { RateAcquire, RateComplete, RateDecision, RateRule } from "../RateLimitStore.js"
import * as RateLimitRows from "./RateLimitRows.js"
import { preparedStatements } from "./SqliteConnection.js"

/** @since 0.1.0 */
export interface SqliteRateLimits {
  /** Decides and records an acquire, inside the caller's transaction; throws what SQLite throws. */
  readonly acquire: (request: RateAcquire) => RateDecision
  /** Records a completion, inside the caller's transaction; throws what SQLite throws. */
  readonly complete: (request: RateComplete) => void
}

const marks = (count: number) => Array.from({ length: count }, () => "?").join(", ")

/**
 * The steps over `db`, the connection the store's `SqlClient` also uses; each runs
 * inside a transaction its caller opened (a batch of the ledger's, or the client's).
 *
 * @example
 * const limits = SqliteRateLimits.make(db)
 * const decision = limits.acquire(request)
 * @since 0.1.0
 */
export const make = (db: Database.Database): SqliteRateLimits => {
  const statement = preparedStatements(db)

  /** Every bucket of `rules`, made when missing, with its TAT. */
  const tats = (rules: ReadonlyArray<RateRule>, now: number): Map<string, number> => {
    const buckets = [...new Set(rules.map((rule) => rule.bucket))]
    statement(
      `INSERT INTO tb_rate_buckets (bucket, tat) VALUES ${buckets.map(() => "(?, ?)").join(", ")}
        ON CONFLICT (bucket) DO NOTHING`
    ).run(buckets.flatMap((bucket) => [bucket, now]))
    const rows = statement(
      `SELECT bucket, tat FROM tb_rate_buckets WHERE bucket IN (${marks(buckets.length)})`
    ).all(buckets)
    const found = new Map<string, number>()
    for (const row of rows) found.set(String(row["bucket"]), RateLimitRows.asNumber(row["tat"]))
    return found
  }

  /** The live leases of `buckets`, by bucket and ticket; expired ones are deleted first. */
  const leases = (buckets: ReadonlyArray<string>, now: number) => {
    if (buckets.length === 0) return new Map<string, Map<string, number>>()
    statement(
      `DELETE FROM tb_rate_leases WHERE bucket IN (${marks(buckets.length)}) AND expires_at <= ?`
    ).run(...buckets, now)
    const rows = statement(
      `SELECT bucket, ticket_id, expires_at FROM tb_rate_leases WHERE bucket IN (${marks(buckets.length)})`
    ).all(buckets)
    return RateLimitRows.leasesOf(rows)
  }

  /** Every TAT the decision changed. */
  const writeTats = (tats: ReadonlyMap<string, number>) => {
    const update = statement("UPDATE tb_rate_buckets SET tat = ? WHERE bucket = ?")
    for (const [bucket, tat] of tats) update.run(tat, bucket)
  }

  const acquire = (request: RateAcquire): RateDecision => {
    const leased = RateLimitRows.parallelBuckets(request.rules)
    const stored = tats(request.rules, request.now)
    const state = { tats: new Map(stored), leases: leases(leased, request.now) }
    const decision = MemoryRateLimits.acquire(state, request)
    if (decision._tag === "Admitted") {
      writeTats(RateLimitRows.changedTats(request.rules, stored, state, request.now))
      const lease = statement(
        `INSERT INTO tb_rate_leases (bucket, ticket_id, expires_at) VALUES (?, ?, ?)
          ON CONFLICT (bucket, ticket_id) DO UPDATE SET expires_at = excluded.expires_at`
      )
      for (const bucket of leased) lease.run(bucket, request.ticketId, request.now + request.leaseMillis)
    }
    return decision
  }

  const complete = (request: RateComplete): void => {
    const stored = tats(request.rules, request.now)
    const state = { tats: new Map(stored), leases: new Map<string, Map<string, number>>() }
    MemoryRateLimits.complete(state, request)
    writeTats(RateLimitRows.changedTats(request.rules, stored, state, request.now))
    const leased = RateLimitRows.parallelBuckets(request.rules)
    if (leased.length > 0)
      statement(
        `DELETE FROM tb_rate_leases WHERE bucket IN (${marks(leased.length)}) AND (ticket_id = ? OR expires_at <= ?)`
      ).run(...leased, request.ticketId, request.now)
  }

  return {
    acquire,
    complete
  }
}
