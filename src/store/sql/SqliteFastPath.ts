/**
 * The steady-state ledger steps on the embedded SQLite store, run synchronously by
 * better-sqlite3 on the connection the `SqlClient` uses (`SqliteConnection.ts`): read
 * the counters, decide, write. Nothing can run between the statements of a synchronous
 * transaction, so it needs no lock and no fiber of its own. The steps queued during one
 * turn of the event loop share one transaction and one commit (group commit, the
 * default; a commit costs more than a step), or each step commits alone. While the
 * process is not busy, a step waits for company only briefly (`CommitWait.ts`), so a
 * burst of requests handled in one turn does not make the first wait for the last.
 *
 * Like `PgFastPath.ts` it decides only the common case: every counter exists and
 * decodes, no open hold anywhere has expired, a new hold id is new, and a settled hold
 * is open, unexpired and on the same scopes. Anything else changes nothing and is
 * handed back to the portable step of `SqlLedger.ts`, which makes missing counters,
 * reclaims expired holds, names a corrupt row in its owner's error, and so on. What a
 * step decides here is what the portable step would decide, in the same order of
 * checks: windows reset lazily (and stay reset after a refusal), the refusal names the
 * first binding scope in request order, the hold row and the counters it holds on are
 * written together, and a settle writes its counters, closes its hold and adds its
 * spend log row in one commit.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type Database from "better-sqlite3"
import { performance } from "node:perf_hooks"
import { Effect, Either, Option } from "effect"
import * as Money from "../../domain/Money.js"
import type { Hold, HoldRequest, Settlement, SpendLogDraft } from "../SpendLedger.js"
import * as CommitWait from "./CommitWait.js"
import * as Counters from "./Counters.js"
import * as Holds from "./Holds.js"
import { preparedStatements } from "./SqliteConnection.js"
import * as SpendLogRows from "./SpendLogRows.js"
import * as SqliteSpendLogIndex from "./SqliteSpendLogIndex.js"
// The same contract as the one-statement PostgreSQL hold: held, refused, or handed back with what to put right.
import { type HoldOutcome, opened } from "./PgFastPath.js"

const FALLBACK: HoldOutcome = { _tag: "Fallback", missing: [], expired: false }
const EXPIRED: HoldOutcome = { _tag: "Fallback", missing: [], expired: true }

/** @since 0.1.0 */
export interface SqliteFastPath {
  /** Places or refuses a hold, or hands it back. */
  readonly hold: (
    request: HoldRequest,
    keys: ReadonlyArray<string>,
    now: number,
    expiresAt: number
  ) => Effect.Effect<HoldOutcome, SqlError>
  /** Settles an open hold, or hands it back (`None`). */
  readonly settle: (
    hold: Hold,
    keys: ReadonlyArray<string>,
    cost: Money.Money,
    log: SpendLogDraft,
    now: number
  ) => Effect.Effect<Option.Option<Settlement>, SqlError>
  /**
   * Runs another store's synchronous step (the rate limits') on this connection with the
   * ledger's steps: in the same batch, transaction and commit, so the rows it writes do
   * not count as a write by someone else.
   */
  readonly run: <A>(body: () => A) => Effect.Effect<A, SqlError>
}

const COUNTER_COLUMNS =
  "scope_key, total, window_spend, held, anchor, window_start, window_end, max_budget, budget_duration"

/** Counters written by one statement at the end of a batch: one call instead of one per counter. */
const WRITE_CHUNK = 32

const SINGLE_UPDATE = `UPDATE tb_counters SET total = ?, window_spend = ?, held = ?, window_start = ?, window_end = ?
  WHERE scope_key = ?`

const CHUNK_UPDATE = `UPDATE tb_counters SET total = v.column2, window_spend = v.column3, held = v.column4,
  window_start = v.column5, window_end = v.column6
  FROM (VALUES ${Array.from({ length: WRITE_CHUNK }, () => "(?, ?, ?, ?, ?, ?)").join(", ")}) AS v
  WHERE tb_counters.scope_key = v.column1`

/** More counters than this, and the cache starts again empty. */
const MAX_CACHED = 10_000

/** A hold this connection placed and has not closed, as its row says. */
interface Placed {
  readonly keys: ReadonlyArray<string>
  readonly amount: Money.Money
  readonly expiresAt: number
}

/** `counter` with new money figures; written out rather than spread, as every step makes several. */
const moved = (
  counter: Counters.Counter,
  held: Money.Money,
  total: Money.Money,
  windowSpend: Money.Money
): Counters.Counter => ({
  key: counter.key,
  total,
  windowSpend,
  held,
  anchor: counter.anchor,
  windowStart: counter.windowStart,
  windowEnd: counter.windowEnd,
  maxBudget: counter.maxBudget,
  duration: counter.duration
})

const sameKeys = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((key, i) => key === b[i])

/**
 * The fast path over `db`, the database under `sql`. Statements are prepared on first
 * use, after the migrations made the tables.
 *
 * @example
 * import { Effect } from "effect"
 * import { SqlClient } from "@effect/sql/SqlClient"
 * import { SqliteDatabase } from "./SqliteConnection.js"
 * import * as SqliteFastPath from "./SqliteFastPath.js"
 *
 * const fastPath = Effect.zipWith(SqliteDatabase, SqlClient, (db, sql) =>
 *   SqliteFastPath.make(db, sql, { batch: true, onShared: () => {} })
 * )
 * @since 0.1.0
 */
export const make = (
  db: Database.Database,
  sql: SqlClient,
  options: {
    /** Gather the steps that wait at the same moment into one transaction; else one transaction each. */
    readonly batch: boolean
    /** Told of every batch of two steps or more that committed, with its size. */
    readonly onShared: (steps: number) => void
    /** The load that sets how long a step waits for company (`CommitWait.ts`); the event loop's by default. */
    readonly load?: CommitWait.Load
  }
): SqliteFastPath => {
  const load = options.load ?? CommitWait.eventLoopLoad()
  const readers = preparedStatements(db, { exactIntegers: true })
  const writers = preparedStatements(db)
  // Readers return money, which must come back exact beyond 2^53.
  const statement = (source: string, reader: boolean): Database.Statement =>
    reader ? readers(source) : writers(source)

  const inKeys = (keys: ReadonlyArray<string>) => `scope_key IN (${keys.map(() => "?").join(", ")})`

  /**
   * What this connection last read or wrote: the counters, the holds it placed that are
   * still open, and a lower bound of when the first open hold expires. Valid only while
   * nothing else wrote since the last batch: no statement of this connection outside
   * these steps (`total_changes()` unchanged) and no other connection (`data_version`
   * unchanged); otherwise all of it is forgotten before the next batch reads.
   */
  const cache = new Map<string, Counters.Counter>()
  const placed = new Map<string, Placed>()
  /** No open hold expires before this; `undefined` when unknown. */
  let earliest: number | undefined
  let markChanges = -1
  let markVersion = -1
  const readMark = () =>
    statement("SELECT total_changes() AS n, data_version AS v FROM pragma_data_version", false).get()
  const forget = () => {
    cache.clear()
    dirty.clear()
    placed.clear()
    earliest = undefined
    markChanges = -1
  }
  const validate = () => {
    const mark = readMark()
    const stale = markChanges === -1 || mark?.["n"] !== markChanges || mark?.["v"] !== markVersion
    // Many scopes and holds come and go (keys, end users): start again rather than grow without bound.
    if (stale || cache.size > MAX_CACHED || placed.size > MAX_CACHED) forget()
  }
  const seal = () => {
    const mark = readMark()
    const changes = mark?.["n"]
    const version = mark?.["v"]
    markChanges = typeof changes === "number" ? changes : -1
    markVersion = typeof version === "number" ? version : -1
  }

  /**
   * Whether an open hold has expired by `now`. The index is read only when the bound
   * does not already answer; holds placed since only lower the bound, closed ones
   * leave it a bound.
   */
  const anyExpired = (now: number) => {
    if (earliest !== undefined && earliest > now) return false
    const row = statement(
      `SELECT expires_at FROM tb_holds WHERE state = 'open' ORDER BY expires_at LIMIT 1`,
      true
    ).get()
    const first = row?.["expires_at"]
    // Text sorts after every number and never compares as due (`expires_at <= now` is false for it).
    earliest = typeof first === "bigint" ? Number(first) : typeof first === "number" ? first : Infinity
    return earliest <= now
  }

  /**
   * Counters changed in the cache and not yet in the table. The steps of a batch all
   * change the same few counters (a team's, the global one), so each is written once, when
   * the batch's steps are done, rather than once per step: the cache is exact while the
   * transaction is open, and a failure rolls the transaction back and forgets both.
   */
  const dirty = new Set<string>()
  const writeCounter = (counter: Counters.Counter) => {
    cache.set(counter.key, counter)
    dirty.add(counter.key)
  }
  const writeDirty = () => {
    const values: Array<unknown> = []
    let rows = 0
    for (const key of dirty) {
      const counter = cache.get(key)
      if (counter === undefined) continue
      values.push(
        counter.key,
        counter.total,
        counter.windowSpend,
        counter.held,
        counter.windowStart,
        Option.getOrNull(counter.windowEnd)
      )
      if (++rows === WRITE_CHUNK) {
        statement(CHUNK_UPDATE, false).run(values)
        values.length = 0
        rows = 0
      }
    }
    // What does not fill a chunk goes one row at a time.
    for (let i = 0; i < values.length; i += 6) {
      statement(SINGLE_UPDATE, false).run(
        values[i + 1],
        values[i + 2],
        values[i + 3],
        values[i + 4],
        values[i + 5],
        values[i]
      )
    }
    dirty.clear()
  }

  /** Adds `amount` to what every counter of `rolls` holds. */
  const addHeld = (rolls: ReadonlyArray<Counters.Rolled>, amount: Money.Money) => {
    for (const { counter } of rolls) {
      writeCounter(moved(counter, Money.add(counter.held, amount), counter.total, counter.windowSpend))
    }
  }

  /** The counters of `keys` brought up to `now`, or why the step must be handed back. */
  const rolled = (keys: ReadonlyArray<string>, now: number): ReadonlyArray<Counters.Rolled> | HoldOutcome => {
    let unread: Array<string> | undefined
    for (const key of keys) if (!cache.has(key)) (unread ??= []).push(key)
    if (unread !== undefined) {
      const rows = statement(`SELECT ${COUNTER_COLUMNS} FROM tb_counters WHERE ${inKeys(unread)}`, true).all(
        ...unread
      )
      if (rows.length !== unread.length) {
        const found = new Set(rows.map((row) => row["scope_key"]))
        return { _tag: "Fallback", missing: unread.filter((key) => !found.has(key)), expired: false }
      }
      const decoded = Counters.decodeCounters(rows)
      if (Either.isLeft(decoded)) return FALLBACK
      for (const counter of decoded.right) cache.set(counter.key, counter)
    }
    const rolls: Array<Counters.Rolled> = []
    for (const key of keys) {
      const counter = cache.get(key)
      if (counter === undefined) return FALLBACK
      rolls.push(Counters.roll(counter, now))
    }
    return rolls
  }
  const holdBody = (
    request: HoldRequest,
    keys: ReadonlyArray<string>,
    now: number,
    expiresAt: number
  ): HoldOutcome => {
    if (anyExpired(now)) return EXPIRED
    const seen = rolled(keys, now)
    if ("_tag" in seen) return seen
    const views = new Map<string, Counters.View>()
    for (const roll of seen) {
      // Only a capped counter can refuse or be the tightest: the others need no view.
      if (Option.isSome(roll.counter.maxBudget)) {
        views.set(roll.counter.key, Counters.view(roll.counter, roll.window))
      }
    }
    const error = Counters.refusal(request, views)
    const held = request.mode === "strict" ? request.amount : Money.zero
    if (error === undefined) {
      // Nothing is written yet: a hold id in use (a retry, or a closed hold reused) goes to the portable step.
      const inserted = statement(
        `INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state) VALUES (?, ?, ?, ?, 'open')
          ON CONFLICT (hold_id) DO NOTHING`,
        false
      ).run(request.holdId, Holds.encodeKeys(keys), held, expiresAt)
      if (inserted.changes === 0) return FALLBACK
      placed.set(request.holdId, { keys, amount: held, expiresAt })
      if (earliest !== undefined && expiresAt < earliest) earliest = expiresAt
    }
    for (const roll of seen) if (roll.changed) writeCounter(roll.counter)
    if (error !== undefined) return { _tag: "Refused", error }
    if (held !== Money.zero) addHeld(seen, held)
    return { _tag: "Held", hold: opened(request, held, expiresAt, views) }
  }

  /** The open hold `holdId` as its row says, when the row is open and decodes. */
  const openHold = (holdId: string): Placed | undefined => {
    const found = statement(
      `SELECT hold_id, scope_keys, amount, expires_at, state, closed_at FROM tb_holds WHERE hold_id = ?`,
      true
    ).get(holdId)
    if (found === undefined) return undefined
    const row = Either.getOrUndefined(Holds.decodeHold(found))
    if (row === undefined || row.state !== "open") return undefined
    return { keys: row.scope_keys, amount: row.amount, expiresAt: row.expires_at }
  }

  const settleBody = (
    hold: Hold,
    keys: ReadonlyArray<string>,
    cost: Money.Money,
    log: SpendLogDraft,
    now: number
  ): Option.Option<Settlement> => {
    const row = placed.get(hold.holdId) ?? openHold(hold.holdId)
    if (row === undefined || row.expiresAt <= now) return Option.none()
    if (!sameKeys(row.keys, keys) || anyExpired(now)) return Option.none()
    const seen = rolled(keys, now)
    if ("_tag" in seen) return Option.none()
    const views = new Map<string, Counters.View>()
    const next: Array<Counters.Counter> = []
    for (const roll of seen) {
      // Gives back what was held (floored at zero) and charges the cost.
      const { counter } = roll
      const after = moved(
        counter,
        Money.minus(counter.held, row.amount),
        Money.add(counter.total, cost),
        Money.add(counter.windowSpend, cost)
      )
      next.push(after)
      if (Option.isSome(after.maxBudget)) views.set(after.key, Counters.view(after, roll.window))
    }
    for (const counter of next) writeCounter(counter)
    statement(`UPDATE tb_holds SET state = 'settled', closed_at = ? WHERE hold_id = ?`, false).run(
      now,
      hold.holdId
    )
    placed.delete(hold.holdId)
    statement(SpendLogRows.POSITIONAL_INSERT, false).run(SpendLogRows.values(log, cost, now))
    unindexed++
    return Option.some({ cost, late: false, tightest: Counters.tightest(hold.scopes, views, Money.zero) })
  }

  interface Queued {
    cancelled: boolean
    /** Runs the step inside the batch transaction; throws what the driver threw. */
    run(): void
    /** Answers the step once its transaction committed, or with why it did not. */
    answer(failure: SqlError | undefined): void
    /** Runs the step through the client instead. */
    detour(): void
  }

  /** A waiting step: one object each, its methods shared (a closure each would cost every step three more). */
  class Step<A> implements Queued {
    cancelled = false
    // Set once the body ran; a body may answer `undefined` (a write with nothing to report).
    private outcome: { readonly value: A } | undefined = undefined
    constructor(
      private readonly body: () => A,
      private readonly resume: (effect: Effect.Effect<A, SqlError>) => void
    ) {}
    run(): void {
      this.outcome = { value: this.body() }
    }
    answer(failure: SqlError | undefined): void {
      this.resume(
        failure !== undefined
          ? Effect.fail(failure)
          : this.outcome === undefined
            ? Effect.fail(new SqlError({ message: "A step was not run" }))
            : Effect.succeed(this.outcome.value)
      )
    }
    detour(): void {
      const body = this.body
      this.resume(
        sql.withTransaction(
          attempt(() => {
            // Other transactions of the client may have run since the last step: read the tables again.
            forget()
            const answer = body()
            writeDirty()
            return answer
          })
        )
      )
    }
  }
  let queue: Array<Queued> = []
  /** Spend log rows this connection wrote since its batches last tried to index the log. */
  let unindexed = 0
  // A savepoint inside the batch: postings that fail to be written (a store whose schema is older
  // than the code) are rolled back alone, and the ledger's steps commit as if nothing was tried.
  const indexLog = db.transaction(() => SqliteSpendLogIndex.catchUp(db))

  // BEGIN IMMEDIATE: another process on the same file makes a batch wait (busy_timeout) before reading, never midway.
  const batch = db.transaction((steps: ReadonlyArray<Queued>) => {
    validate()
    for (const step of steps) if (!step.cancelled) step.run()
    writeDirty()
    if (unindexed >= SqliteSpendLogIndex.CATCH_UP_ROWS) {
      unindexed = 0
      try {
        indexLog()
      } catch {
        // Tried again after as many rows; until then queries read the rows above the watermark directly.
      }
    }
    seal()
  }).immediate

  /** Runs `steps` as one transaction; on failure nothing of it stays, the cache included. */
  const commit = (steps: ReadonlyArray<Queued>): SqlError | undefined => {
    try {
      batch(steps)
      return undefined
    } catch (cause) {
      forget()
      return new SqlError({ cause, message: "Failed to run ledger steps" })
    }
  }

  /**
   * Runs every step queued so far as one transaction and one commit: steps still run
   * one after the other, each on what the ones before it wrote. A batch that fails is
   * rolled back whole and its steps run again one transaction each, so a failure
   * reaches only the step that causes it. While the client has a transaction open (it
   * spans several turns of its fiber), the steps queue for the connection through the
   * client instead.
   */
  const flush = () => {
    const steps = queue.filter((step) => !step.cancelled)
    queue = []
    if (steps.length === 0) return
    if (db.inTransaction) {
      forget()
      for (const step of steps) step.detour()
      return
    }
    const failure = commit(steps)
    if (failure === undefined && steps.length > 1) options.onShared(steps.length)
    if (failure === undefined || steps.length === 1) {
      for (const step of steps) step.answer(failure)
      return
    }
    for (const step of steps) step.answer(commit([step]))
  }

  /** When the first step of the queue arrived, on `performance.now()`'s scale. */
  let firstQueuedAt = 0
  let flushScheduled = false
  const flushAtEndOfTurn = () => {
    flushScheduled = false
    flush()
  }

  /**
   * Queues a step for the batch that commits at the end of this turn of the event loop,
   * or sooner: once the queue's first step has waited as long as the load allows, the
   * steps queued so far commit before this one queues.
   */
  const exec = <A>(body: () => A): Effect.Effect<A, SqlError> =>
    Effect.async<A, SqlError>((resume) => {
      const step = new Step(body, resume)
      if (options.batch) {
        const now = performance.now()
        if (queue.length > 0 && now - firstQueuedAt >= CommitWait.limit(load(now))) flush()
        if (queue.length === 0) firstQueuedAt = now
        if (!flushScheduled) {
          flushScheduled = true
          setImmediate(flushAtEndOfTurn)
        }
      }
      queue.push(step)
      if (!options.batch) flush()
      return Effect.sync(() => {
        step.cancelled = true
      })
    })

  return {
    hold: (request, keys, now, expiresAt) => exec(() => holdBody(request, keys, now, expiresAt)),
    settle: (hold, keys, cost, log, now) => exec(() => settleBody(hold, keys, cost, log, now)),
    run: exec
  }
}

const attempt = <A>(run: () => A): Effect.Effect<A, SqlError> =>
  Effect.try({ try: run, catch: (cause) => new SqlError({ cause, message: "Failed to run a ledger step" }) })
