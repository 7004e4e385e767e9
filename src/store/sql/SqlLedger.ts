/**
 * The spend ledger of the SQL stores. Every step is one transaction over the
 * counters of its scopes, locked in key order, with the window reset, the check and
 * the writes inside it; the spend log row of a settlement is written in the same
 * transaction as the counters it moved. On PostgreSQL the common case runs as one
 * statement instead (`PgFastPath.ts`) and falls back to the transaction here. Holds
 * and settles that wait at the same moment share one call and one commit on PostgreSQL
 * (`GroupCommit.ts`, `PgLedgerBatch.ts`), each decided in arrival order exactly as it
 * would be alone; a lone step takes the path above in its caller's fiber. On the
 * embedded SQLite store the common case is one synchronous transaction on the store's
 * own connection instead (`SqliteFastPath.ts`), batched the same way, with the same
 * fallback to the transaction here.
 *
 * Semantics are those of the memory store: limits are read from the store inside the
 * step (the counters carry a copy kept in step by entity writes), expired holds are
 * reclaimed before a step, a late settle of an expired hold still charges, and a
 * second settle or release is refused with `HoldClosed`.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import {
  Cause,
  Clock,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  FiberId,
  Metric,
  Option
} from "effect"
import { type BudgetExceeded, type CorruptRecord, HoldClosed, StoreUnavailable } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import * as Scope from "../../domain/Scope.js"
import * as Spend from "../../domain/Spend.js"
import type { Hold, HoldRequest, Settlement, SpendLedgerShape, SpendLogDraft } from "../SpendLedger.js"
import * as CounterStatements from "./CounterStatements.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import * as GroupCommit from "./GroupCommit.js"
import * as Holds from "./Holds.js"
import * as LedgerBatch from "./LedgerBatch.js"
import * as PgFastPath from "./PgFastPath.js"
import * as PgLedgerBatch from "./PgLedgerBatch.js"
import { SqliteDatabase } from "./SqliteConnection.js"
import * as SpendLogRows from "./SpendLogRows.js"
import * as SqliteFastPath from "./SqliteFastPath.js"
import { traced } from "../../services/internal/traced.js"
import { guard, realClock, retryConflicts, unavailable } from "./SqlErrors.js"

/** @since 0.1.0 */
export interface LedgerOptions {
  readonly holdTtlMillis: number
  /** None for an in-process database. */
  readonly timeout: Option.Option<Duration.Duration>
  /** Gather holds and settles that wait at the same moment into one transaction. Default `true`. */
  readonly groupCommit?: boolean
}

type HoldFailure = BudgetExceeded | SqlError | CorruptRecord | StoreUnavailable
type SettleFailure = HoldClosed | SqlError | CorruptRecord | StoreUnavailable

/** What a queued step is answered with: its errors are the store's own already. */
type Answered<F> = Exclude<F, SqlError>

interface HoldEntry extends GroupCommit.Pending {
  readonly _tag: "Hold"
  readonly step: LedgerBatch.HoldStep
  /** When its caller stops waiting (epoch millis of the real clock); undefined without a timeout. */
  readonly deadline: number | undefined
  readonly resume: (effect: Effect.Effect<Hold, Answered<HoldFailure>>) => void
}

interface SettleEntry extends GroupCommit.Pending {
  readonly _tag: "Settle"
  readonly step: LedgerBatch.SettleStep
  readonly deadline: number | undefined
  readonly resume: (effect: Effect.Effect<Settlement, Answered<SettleFailure>>) => void
}

type Entry = HoldEntry | SettleEntry

/** The most steps one transaction takes (well under either database's limit on parameters). */
const MAX_BATCH = 256

const CLOSING = new StoreUnavailable({ operation: "ledger: the store is closing" })

/** The longest a batch slot waits for a step that runs alone in its caller's fiber. */
const SLOT_WAIT = Duration.seconds(1)

/**
 * Ledger transactions that served two steps or more at once.
 *
 * @since 0.1.0
 */
export const groupCommits = Metric.counter("teambudget_sql_group_commits_total", {
  description: "Ledger transactions that served two or more waiting holds and settles at once",
  incremental: true
})

/**
 * Holds and settles decided inside such a shared transaction.
 *
 * @since 0.1.0
 */
export const groupCommitSteps = Metric.counter("teambudget_sql_group_commit_steps_total", {
  description: "Holds and settles decided inside a shared ledger transaction",
  incremental: true
})

/**
 * Why a step's transaction ended without doing anything: counters are missing (make
 * them), or an open hold has expired (reclaim it first, as every step does). Either
 * way the step runs again.
 */
type Retry = { readonly _tag: "Missing"; readonly keys: ReadonlyArray<string> } | { readonly _tag: "Expired" }

const EXPIRED: Retry = { _tag: "Expired" }

const ATTEMPTS = 3

const distinct = (scopes: ReadonlyArray<Scope.ScopeRef>) => {
  const refs = new Map<string, Scope.ScopeRef>()
  for (const scope of scopes) {
    const key = Scope.key(scope)
    if (!refs.has(key)) refs.set(key, scope)
  }
  return refs
}

/** The keys of `distinct`, in the same order, without the map: a step's few scopes are scanned faster. */
const distinctKeys = (scopes: ReadonlyArray<Scope.ScopeRef>): Array<string> => {
  const keys: Array<string> = []
  for (const scope of scopes) {
    const key = Scope.key(scope)
    if (!keys.includes(key)) keys.push(key)
  }
  return keys
}

const fromEither = <A, E>(either: Either.Either<A, E>): Effect.Effect<A, E> =>
  Either.match(either, { onLeft: Effect.fail, onRight: Effect.succeed })

/** @since 0.1.0 */
export const make = Effect.fnUntraced(function* (options: LedgerOptions) {
  const sql = (yield* SqlClient).withoutTransforms()
  const fast = Dialect.hasFastPath(sql)
  const rowLocks = Dialect.hasRowLocks(sql)
  // On the embedded store's own connection, each step runs synchronously, in batches of what waits at once
  // (group commit) or alone.
  const sqlite = Option.map(yield* Effect.serviceOption(SqliteDatabase), (db) =>
    SqliteFastPath.make(db, sql, {
      batch: options.groupCommit ?? true,
      onShared: (steps) => {
        groupCommits.unsafeUpdate(1, [])
        groupCommitSteps.unsafeUpdate(steps, [])
      }
    })
  )
  const { holdTtlMillis, timeout } = options

  /**
   * Locks and decodes the counters of `keys`, or reports why the step must wait:
   * counters are missing, or an open hold has expired (the same query tells).
   */
  const lockAll = (keys: ReadonlyArray<string>, refs: ReadonlyMap<string, Scope.ScopeRef>, now: number) =>
    Effect.gen(function* () {
      const rows = yield* CounterStatements.lock(sql, keys, now)
      if (rows.some((row) => row["expired"] !== null && row["expired"] !== undefined)) {
        return Either.left(EXPIRED)
      }
      const counters = yield* fromEither(Counters.decodeCounters(rows, refs))
      const found = new Map(counters.map((c) => [c.key, c] as const))
      const missing = keys.filter((key) => !found.has(key))
      return missing.length > 0 ? Either.left<Retry>({ _tag: "Missing", keys: missing }) : Either.right(found)
    })

  const reclaim = (now: number) => retryConflicts(Holds.reclaim(sql, now, holdTtlMillis))

  /**
   * Makes the counters a hold found missing, unless the hold would be refused anyway:
   * a refusal writes nothing, not even the counter of a scope never seen before (an
   * end user named only by the request, say). The counters it would make count as
   * made, nothing spent, beside the others as they stand.
   */
  const makeCountersFor =
    (request: HoldRequest, refs: ReadonlyMap<string, Scope.ScopeRef>, now: number) =>
    (missing: ReadonlyArray<string>): Effect.Effect<void, BudgetExceeded | SqlError | CorruptRecord> =>
      Effect.gen(function* () {
        const made = yield* CounterStatements.fresh(sql, missing, refs, now)
        const present = [...refs.keys()].filter((key) => !missing.includes(key))
        const rows = present.length === 0 ? [] : yield* CounterStatements.peek(sql, present, now)
        const counters = yield* fromEither(Counters.decodeCounters(rows, refs))
        const seen = new Map<string, Counters.View>()
        for (const counter of [...counters, ...made]) {
          const { counter: rolled, window } = Counters.roll(counter, now)
          seen.set(counter.key, Counters.view(rolled, window))
        }
        const refused = Counters.refusal(request, seen)
        if (refused !== undefined) return yield* Effect.fail(refused)
        yield* CounterStatements.insert(sql, made)
      })

  /**
   * Runs a step's transaction, making missing counters (with `make`) or reclaiming
   * expired holds between attempts.
   */
  const withCounters = <A, E, M = never>(
    refs: ReadonlyMap<string, Scope.ScopeRef>,
    now: number,
    step: Effect.Effect<Either.Either<A, Retry>, E | SqlError>,
    make: (missing: ReadonlyArray<string>) => Effect.Effect<void, M | SqlError | CorruptRecord> = (missing) =>
      CounterStatements.ensure(sql, missing, refs, now)
  ): Effect.Effect<A, E | M | SqlError | CorruptRecord | StoreUnavailable> =>
    Effect.gen(function* () {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const result = yield* retryConflicts(sql.withTransaction(step))
        if (Either.isRight(result)) return result.right
        if (result.left._tag === "Expired") yield* reclaim(now)
        else yield* make(result.left.keys)
      }
      return yield* new StoreUnavailable({ operation: "ledger: the step could not settle its counters" })
    })

  const reclaimDue = (now: number) =>
    Effect.flatMap(Holds.anyExpired(sql, now), (due) => (due ? reclaim(now) : Effect.succeed(0)))

  const holdStep = (
    request: HoldRequest,
    refs: ReadonlyMap<string, Scope.ScopeRef>,
    now: number
  ): Effect.Effect<Either.Either<Either.Either<Hold, BudgetExceeded>, Retry>, SqlError | CorruptRecord> =>
    Effect.gen(function* () {
      const keys = [...refs.keys()]
      const locked = yield* lockAll(keys, refs, now)
      if (Either.isLeft(locked)) return Either.left(locked.left)
      const counters = locked.right
      const rolled = new Map<string, Counters.Rolled>()
      for (const [key, counter] of counters) rolled.set(key, Counters.roll(counter, now))
      const held = request.mode === "strict" ? request.amount : Money.zero
      const seen = new Map<string, Counters.View>()
      for (const [key, entry] of rolled) {
        if (entry.changed) yield* CounterStatements.write(sql, entry.counter)
        seen.set(key, Counters.view(entry.counter, entry.window))
      }
      const refusal = Counters.refusal(request, seen)
      if (refusal === undefined && held !== Money.zero) yield* CounterStatements.addHeld(sql, keys, held)
      if (refusal !== undefined) return Either.right(Either.left(refusal))
      const expiresAt = now + holdTtlMillis
      const opened = yield* sql`INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state)
        VALUES (${request.holdId}, ${Holds.encodeKeys(keys)}, ${held}, ${expiresAt}, 'open')
        ON CONFLICT (hold_id) DO UPDATE SET scope_keys = excluded.scope_keys, amount = excluded.amount,
          expires_at = excluded.expires_at, state = 'open', closed_at = NULL
        WHERE tb_holds.state <> 'open'
        RETURNING hold_id`
      if (opened.length === 0) return yield* Effect.dieMessage("A hold with this id is open already.")
      const hold: Hold = {
        holdId: request.holdId,
        scopes: request.scopes,
        amount: held,
        expiresAt: DateTime.unsafeMake(expiresAt),
        tightest: Counters.tightest(request.scopes, seen, held)
      }
      return Either.right(Either.right(hold))
    })

  const closeStep = (
    hold: Hold,
    now: number,
    close:
      | { readonly state: "settled"; readonly cost: Money.Money; readonly log: SpendLogDraft }
      | { readonly state: "released" }
  ): Effect.Effect<Either.Either<Either.Either<Settlement, HoldClosed>, Retry>, SqlError | CorruptRecord> =>
    Effect.gen(function* () {
      const before = yield* Holds.find(sql, hold.holdId, false)
      const keys = Option.match(before, {
        onNone: () => [...distinct(hold.scopes).keys()],
        onSome: (row) => row.scope_keys
      })
      const locked = yield* lockAll(keys, distinct(hold.scopes), now)
      if (Either.isLeft(locked)) return Either.left(locked.left)
      // Under row locks the hold is read again once its counters are held; SQLite has one writer.
      const row = rowLocks ? yield* Holds.find(sql, hold.holdId, true) : before
      const forgotten =
        Option.isSome(row) &&
        row.value.state !== "open" &&
        Option.exists(row.value.closed_at, (at) => at < now - Holds.CLOSED_HOLD_TTLS * holdTtlMillis)
      if (
        Option.isSome(row) &&
        !forgotten &&
        (row.value.state === "settled" || row.value.state === "released")
      ) {
        return Either.right(Either.left(new HoldClosed({ holdId: hold.holdId, state: row.value.state })))
      }
      const open = Option.isSome(row) && row.value.state === "open"
      const unheld = open ? row.value.amount : Money.zero
      const late = !open || row.value.expires_at <= now
      const cost = close.state === "settled" ? close.cost : Money.zero
      const seen = new Map<string, Counters.View>()
      for (const [key, counter] of locked.right) {
        const { counter: rolled, window, changed } = Counters.roll(counter, now)
        if (changed) yield* CounterStatements.write(sql, rolled)
        const next: Counters.Counter = {
          ...rolled,
          held: Money.minus(rolled.held, unheld),
          total: Money.add(rolled.total, cost),
          windowSpend: Money.add(rolled.windowSpend, cost)
        }
        seen.set(key, Counters.view(next, window))
      }
      yield* CounterStatements.charge(sql, keys, unheld, cost)
      yield* Holds.close(sql, hold.holdId, keys, close.state, Option.isSome(row), now)
      if (close.state === "settled") {
        const { log } = close
        yield* sql`INSERT INTO tb_spend_logs ${sql.insert(SpendLogRows.row(log, cost, now))}`
      }
      const settlement: Settlement = {
        cost,
        late,
        tightest: Counters.tightest(hold.scopes, seen, Money.zero)
      }
      return Either.right(Either.right(settlement))
    })

  /** The synchronous SQLite settle, or the portable one for what it hands back. */
  const settleSqlite = (
    fastPath: SqliteFastPath.SqliteFastPath,
    hold: Hold,
    cost: Money.Money,
    log: SpendLogDraft,
    now: number
  ): Effect.Effect<Settlement, HoldClosed | CorruptRecord | StoreUnavailable> =>
    Effect.flatMap(
      Effect.mapError(fastPath.settle(hold, distinctKeys(hold.scopes), cost, log, now), (error) =>
        unavailable("settle", error)
      ),
      (done) =>
        Option.isSome(done) ? Effect.succeed(done.value) : guardSettle(settlePortable(hold, cost, log, now))
    )

  const settleAt = (hold: Hold, cost: Money.Money, log: SpendLogDraft, now: number) =>
    Option.isSome(sqlite)
      ? settleSqlite(sqlite.value, hold, cost, log, now)
      : settlePortable(hold, cost, log, now)

  const settlePortable = (hold: Hold, cost: Money.Money, log: SpendLogDraft, now: number) =>
    Effect.gen(function* () {
      if (fast) {
        const keys = [...distinct(hold.scopes).keys()]
        const done = yield* retryConflicts(PgFastPath.settle(sql, hold, keys, cost, log, now))
        if (Option.isSome(done)) return done.value
      }
      const result = yield* withCounters(
        distinct(hold.scopes),
        now,
        closeStep(hold, now, { state: "settled", cost, log })
      )
      return yield* Either.match(result, { onLeft: Effect.fail, onRight: Effect.succeed })
    })

  /**
   * The synchronous SQLite step; what it hands back is put right (counters made, expired
   * holds reclaimed) and tried again, or decided by the portable step.
   */
  const holdSqlite = (
    fastPath: SqliteFastPath.SqliteFastPath,
    request: HoldRequest,
    now: number,
    attempt: number
  ): Effect.Effect<Hold, BudgetExceeded | CorruptRecord | StoreUnavailable> => {
    const step = fastPath.hold(request, distinctKeys(request.scopes), now, now + holdTtlMillis)
    return Effect.flatMap(
      Effect.mapError(step, (error) => unavailable("hold", error)),
      (outcome): Effect.Effect<Hold, BudgetExceeded | CorruptRecord | StoreUnavailable> => {
        if (outcome._tag === "Held") return Effect.succeed(outcome.hold)
        if (outcome._tag === "Refused") return Effect.fail(outcome.error)
        if (attempt >= ATTEMPTS || (!outcome.expired && outcome.missing.length === 0)) {
          return guardHold(holdPortable(request, now))
        }
        const repair = outcome.expired
          ? Effect.asVoid(reclaim(now))
          : makeCountersFor(request, distinct(request.scopes), now)(outcome.missing)
        return Effect.zipRight(guardHold(repair), holdSqlite(fastPath, request, now, attempt + 1))
      }
    )
  }

  const holdAt = (request: HoldRequest, now: number): Effect.Effect<Hold, HoldFailure> =>
    Option.isSome(sqlite) ? holdSqlite(sqlite.value, request, now, 1) : holdPortable(request, now)

  const guardHold = guard("hold", timeout)
  const guardSettle = guard("settle", timeout)

  const holdPortable = (request: HoldRequest, now: number) =>
    Effect.gen(function* () {
      const refs = distinct(request.scopes)
      const makeCounters = makeCountersFor(request, refs, now)
      if (fast) {
        // Missing counters and expired holds are put right outside the step, which then
        // runs again as one statement; anything else goes to the portable step.
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          const outcome = yield* retryConflicts(
            PgFastPath.hold(sql, request, [...refs.keys()], now, now + holdTtlMillis)
          )
          if (outcome._tag === "Held") return outcome.hold
          if (outcome._tag === "Refused") return yield* outcome.error
          if (outcome.expired) yield* reclaim(now)
          else if (outcome.missing.length > 0) yield* makeCounters(outcome.missing)
          else break
        }
      }
      const result = yield* withCounters(refs, now, holdStep(request, refs, now), makeCounters)
      return yield* Either.match(result, { onLeft: Effect.fail, onRight: Effect.succeed })
    })

  const stepGuard = guard("ledger", timeout)

  /**
   * The guard of a step that runs in its caller's fiber after waiting in the queue: the
   * time it waited counts against its timeout.
   */
  const guardRest = (operation: string, deadline: number | undefined) =>
    guard(
      operation,
      deadline === undefined
        ? Option.none()
        : Option.some(Duration.millis(Math.max(0, deadline - Date.now())))
    )
  const holdAlone = (entry: HoldEntry) =>
    guardRest("hold", entry.deadline)(holdAt(entry.step.request, entry.step.now))
  const settleAlone = (entry: SettleEntry) => {
    const { cost, hold, log, now } = entry.step
    return guardRest("settle", entry.deadline)(settleAt(hold, cost, log, now))
  }

  /** Answers a step from its batch; a step handed back runs alone, in its caller's fiber. */
  const answer = (entry: Entry, verdict: LedgerBatch.Verdict): void => {
    if (entry._tag === "Hold") {
      entry.resume(
        verdict._tag === "Held"
          ? Effect.succeed(verdict.hold)
          : verdict._tag === "Refused"
            ? Effect.fail(verdict.error)
            : holdAlone(entry)
      )
    } else {
      entry.resume(verdict._tag === "Settled" ? Effect.succeed(verdict.settlement) : settleAlone(entry))
    }
  }

  const failAll = (entries: ReadonlyArray<Entry>, cause: Cause.Cause<StoreUnavailable>) => {
    for (const entry of entries) {
      if (entry._tag === "Hold") entry.resume(Effect.failCause(cause))
      else entry.resume(Effect.failCause(cause))
    }
  }

  /**
   * A step with nobody waiting beside it takes the usual path (one round trip on
   * PostgreSQL), in its caller's fiber; its batch slot stays taken until it is done, so
   * the steps queuing meanwhile still gather into the next batch.
   */
  const alone = (entry: Entry): Effect.Effect<void> =>
    Effect.suspend(() => {
      // Once answered, the caller runs on; until then it may still be interrupted, and answers no more.
      if (entry.cancelled) return Effect.void
      const done = Deferred.unsafeMake<void>(FiberId.none)
      const free = Effect.sync(() => Deferred.unsafeDone(done, Exit.void))
      if (entry._tag === "Hold") entry.resume(Effect.ensuring(holdAlone(entry), free))
      else entry.resume(Effect.ensuring(settleAlone(entry), free))
      // A caller interrupted just as it was answered never frees the slot: stop waiting in time.
      return Effect.raceFirst(Deferred.await(done), realClock.sleep(SLOT_WAIT))
    })

  const runBatch = (entries: ReadonlyArray<Entry>): Effect.Effect<void> => {
    const only = entries.length === 1 ? entries[0] : undefined
    if (only !== undefined) return alone(only)
    const steps = entries.map((entry) => entry.step)
    return Effect.exit(stepGuard(retryConflicts(PgLedgerBatch.run(sql, holdTtlMillis, steps)))).pipe(
      Effect.flatMap((exit) => {
        if (Exit.isFailure(exit)) return Effect.sync(() => failAll(entries, exit.cause))
        let decided = 0
        exit.value.forEach((verdict, i) => {
          const entry = entries[i]
          if (entry === undefined) return
          if (verdict._tag !== "Fallback") decided++
          answer(entry, verdict)
        })
        return Effect.zipRight(Metric.increment(groupCommits), Metric.incrementBy(groupCommitSteps, decided))
      })
    )
  }

  const offer =
    // Batches are one function call on PostgreSQL; the embedded SQLite store batches its
    // synchronous steps itself, and an SQLite client of the host's runs each step alone.
    (options.groupCommit ?? true) && fast
      ? Option.some(
          yield* GroupCommit.make<Entry>({
            run: runBatch,
            maxBatch: MAX_BATCH,
            // The next batch is sent while the one before waits for its commit.
            concurrency: 2,
            abandon: (entries) => failAll(entries, Cause.fail(CLOSING))
          })
        )
      : Option.none()

  const timeoutMillis = Option.map(timeout, Duration.toMillis)

  /**
   * Queues a step for the next batch and waits for its answer, or for its timeout: a
   * timer rather than a race, which would fork two fibers for every step. Without group
   * commit it runs at once, under the guard.
   */
  const submit = <A, E>(
    operation: string,
    build: (answer: (effect: Effect.Effect<A, E>) => void, deadline: number | undefined) => Entry,
    direct: () => Effect.Effect<A, E | SqlError>
  ): Effect.Effect<A, E | StoreUnavailable> =>
    Option.match(offer, {
      onNone: () => guard(operation, timeout)(direct()),
      onSome: (offer) =>
        Effect.async<A, E | StoreUnavailable>((resume) => {
          let timer: ReturnType<typeof setTimeout> | undefined
          const entry = build(
            (effect) => {
              if (entry.cancelled) return
              entry.cancelled = true
              if (timer !== undefined) clearTimeout(timer)
              resume(effect)
            },
            Option.isSome(timeoutMillis) ? Date.now() + timeoutMillis.value : undefined
          )
          if (Option.isSome(timeoutMillis)) {
            timer = setTimeout(() => {
              if (entry.cancelled) return
              entry.cancelled = true
              resume(Effect.fail(new StoreUnavailable({ operation: `${operation} timed out` })))
            }, timeoutMillis.value)
          }
          offer(entry)
          return Effect.sync(() => {
            entry.cancelled = true
            if (timer !== undefined) clearTimeout(timer)
          })
        })
    })

  const hold = (request: HoldRequest): Effect.Effect<Hold, Answered<HoldFailure>> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      submit<Hold, Answered<HoldFailure>>(
        "hold",
        (resume, deadline) => ({
          _tag: "Hold",
          cancelled: false,
          step: { _tag: "Hold", request, keys: [...distinct(request.scopes).keys()], now },
          deadline,
          resume
        }),
        () => holdAt(request, now)
      )
    )

  const settle = (
    hold: Hold,
    cost: Money.Money,
    log: SpendLogDraft
  ): Effect.Effect<Settlement, Answered<SettleFailure>> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      submit<Settlement, Answered<SettleFailure>>(
        "settle",
        (resume, deadline) => ({
          _tag: "Settle",
          cancelled: false,
          step: { _tag: "Settle", hold, keys: [...distinct(hold.scopes).keys()], cost, log, now },
          deadline,
          resume
        }),
        () => settleAt(hold, cost, log, now)
      )
    )

  const release = (hold: Hold) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const result = yield* withCounters(
        distinct(hold.scopes),
        now,
        closeStep(hold, now, { state: "released" })
      )
      if (Either.isLeft(result)) return yield* result.left
    })

  const reclaimExpired = () =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => retryConflicts(Holds.reclaim(sql, now, holdTtlMillis)))

  const spendOf = (scope: Scope.ScopeRef) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* reclaimDue(now)
      const rows = yield* sql<Record<string, unknown>>`SELECT scope_key, total, window_spend, held, anchor,
        window_start, window_end, max_budget, budget_duration FROM tb_counters WHERE scope_key = ${Scope.key(scope)}`
      const counters = yield* fromEither(Counters.decodeCounters(rows, distinct([scope])))
      const counter = counters[0]
      if (counter === undefined) return Spend.empty
      const { counter: rolled, window } = Counters.roll(counter, now)
      return new Spend.SpendSnapshot(
        {
          total: rolled.total,
          current: Counters.current(rolled, window),
          held: rolled.held,
          resetAt: Counters.resetAt(window)
        },
        true
      )
    })

  const ledger: SpendLedgerShape = {
    // The synchronous SQLite steps map their own errors; only what they hand back goes through the guard.
    hold: Option.match(sqlite, {
      // The step guards itself: its wait for a batch counts against its timeout.
      onNone: () => traced("SpendLedger.hold", hold),
      onSome: (fastPath) =>
        traced("SpendLedger.hold", (request: HoldRequest) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => holdSqlite(fastPath, request, now, 1))
        )
    }),
    settle: Option.match(sqlite, {
      onNone: () => traced("SpendLedger.settle", settle),
      onSome: (fastPath) =>
        traced("SpendLedger.settle", (hold: Hold, cost: Money.Money, log: SpendLogDraft) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => settleSqlite(fastPath, hold, cost, log, now))
        )
    }),
    release: Effect.fn("SpendLedger.release")(function* (hold: Hold) {
      return yield* guard("release", timeout)(release(hold))
    }),
    reclaimExpired: Effect.fn("SpendLedger.reclaimExpired")(function* () {
      return yield* guard("reclaim", timeout)(reclaimExpired())
    }),
    spendOf: Effect.fn("SpendLedger.spendOf")(function* (scope: Scope.ScopeRef) {
      return yield* guard("spend", timeout)(spendOf(scope))
    })
  }
  return {
    ledger,
    /** Another store's synchronous steps in the embedded store's batches (see `SqliteFastPath.run`). */
    sqliteSteps: Option.map(sqlite, (fastPath) => fastPath.run)
  }
})
