/**
 * Hold rows of the SQL stores. A hold is `open` until it is `settled` or `released`,
 * or `expired` when its TTL passed first and its money went back to its counters.
 * Closed rows are kept a few TTLs so a second settle is refused instead of charged
 * twice, then pruned.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Option, Schema } from "effect"
import { CorruptRecord } from "../../domain/Errors.js"
import * as Money from "../../domain/Money.js"
import * as CounterStatements from "./CounterStatements.js"
import * as Counters from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { RowReader } from "./RowReader.js"
import { column } from "./SqlErrors.js"

/** How many TTLs a closed hold is remembered. @since 0.1.0 */
export const CLOSED_HOLD_TTLS = 4

/** @since 0.1.0 */
export const HoldState = Schema.Literal("open", "settled", "released", "expired")
/** @since 0.1.0 */
export type HoldState = typeof HoldState.Type

/** A hold row, decoded. @since 0.1.0 */
export interface HoldRow {
  readonly hold_id: string
  readonly scope_keys: ReadonlyArray<string>
  readonly amount: Money.Money
  readonly expires_at: number
  readonly state: HoldState
  readonly closed_at: Option.Option<number>
}

const isState = Schema.is(HoldState)

/** @since 0.1.0 */
export const decodeHold = (row: Record<string, unknown>): Either.Either<HoldRow, CorruptRecord> => {
  const read = new RowReader(row)
  const state = row["state"]
  const hold: HoldRow = {
    hold_id: read.string("hold_id"),
    scope_keys: read.stringArray("scope_keys"),
    amount: read.money("amount"),
    expires_at: read.millis("expires_at"),
    state: isState(state) ? state : "open",
    closed_at: read.optionalMillis("closed_at")
  }
  const problem =
    read.problem ?? (isState(state) ? undefined : `state: expected open, settled, released or expired`)
  return problem === undefined
    ? Either.right(hold)
    : Either.left(new CorruptRecord({ entity: "hold", id: column("hold_id")(row), detail: problem }))
}

/** The stored form of a hold's scope keys. @since 0.1.0 */
export const encodeKeys = (keys: ReadonlyArray<string>): string => JSON.stringify(keys)

/** Reads one hold, locking it on PostgreSQL. @since 0.1.0 */
export const find = (sql: SqlClient, holdId: string, lock: boolean) =>
  Effect.flatMap(
    sql<Record<string, unknown>>`SELECT hold_id, scope_keys, amount, expires_at, state, closed_at
      FROM tb_holds WHERE hold_id = ${holdId}${lock ? Dialect.forUpdate(sql) : sql.literal("")}`,
    (rows) => {
      const row = rows[0]
      if (row === undefined) return Effect.succeed(Option.none<HoldRow>())
      return Either.match(decodeHold(row), {
        onLeft: (error) => Effect.fail(error),
        onRight: (hold) => Effect.succeed(Option.some(hold))
      })
    }
  )

/** Writes the closing of a hold: its new state, or a row for a hold this store had forgotten. @since 0.1.0 */
export const close = (
  sql: SqlClient,
  holdId: string,
  keys: ReadonlyArray<string>,
  state: "settled" | "released",
  existed: boolean,
  now: number
): Effect.Effect<void, SqlError> =>
  existed
    ? Effect.asVoid(sql`UPDATE tb_holds SET state = ${state}, closed_at = ${now} WHERE hold_id = ${holdId}`)
    : Effect.asVoid(sql`INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state, closed_at)
        VALUES (${holdId}, ${encodeKeys(keys)}, 0, ${now}, ${state}, ${now})`)

/** Whether any open hold has expired by `now` (one index probe). @since 0.1.0 */
export const anyExpired = (sql: SqlClient, now: number): Effect.Effect<boolean, SqlError> =>
  Effect.map(
    sql`SELECT hold_id FROM tb_holds WHERE state = 'open' AND expires_at <= ${now} LIMIT 1`,
    (rows) => rows.length > 0
  )

const BATCH = 500

/**
 * Gives the money of expired holds back to their counters and forgets old closed
 * holds; returns how many holds it reclaimed. Each batch locks the counters involved
 * (in key order) before it claims its holds, like every other step.
 *
 * A hold row that cannot be decoded is still closed, so it cannot block reclaiming;
 * what it held stays on its counters, and a warning names it.
 *
 * @since 0.1.0
 */
export const reclaim = (
  sql: SqlClient,
  now: number,
  ttlMillis: number
): Effect.Effect<number, SqlError | CorruptRecord> =>
  Effect.gen(function* () {
    let reclaimed = 0
    for (;;) {
      const due = yield* sql<
        Record<string, unknown>
      >`SELECT hold_id, scope_keys, amount, expires_at, state, closed_at
        FROM tb_holds WHERE state = 'open' AND expires_at <= ${now}
        ORDER BY expires_at, hold_id LIMIT ${BATCH}`
      if (due.length === 0) break
      const keys = new Set<string>()
      for (const row of due) {
        const decoded = decodeHold(row)
        if (Either.isRight(decoded)) for (const key of decoded.right.scope_keys) keys.add(key)
      }
      const ids = due.map(column("hold_id"))
      reclaimed += yield* sql.withTransaction(
        Effect.gen(function* () {
          const counters = yield* Effect.flatMap(CounterStatements.lock(sql, [...keys], now), (rows) =>
            Either.match(Counters.decodeCounters(rows), { onLeft: Effect.fail, onRight: Effect.succeed })
          )
          const claimed = yield* sql<
            Record<string, unknown>
          >`UPDATE tb_holds SET state = 'expired', closed_at = ${now}
            WHERE ${sql.in("hold_id", ids)} AND state = 'open' AND expires_at <= ${now}
            RETURNING hold_id, scope_keys, amount, expires_at, state, closed_at`
          const release = new Map<string, Money.Money>()
          for (const row of claimed) {
            const decoded = decodeHold(row)
            if (Either.isLeft(decoded)) {
              yield* Effect.logWarning(
                "An expired hold could not be read; what it held stays held.",
                decoded.left
              )
              continue
            }
            for (const key of decoded.right.scope_keys) {
              release.set(key, Money.add(release.get(key) ?? Money.zero, decoded.right.amount))
            }
          }
          for (const counter of counters) {
            const amount = release.get(counter.key)
            if (amount === undefined || amount === Money.zero) continue
            yield* sql`UPDATE tb_counters SET held = ${Money.minus(counter.held, amount)}
              WHERE scope_key = ${counter.key}`
          }
          return claimed.length
        })
      )
      if (due.length < BATCH) break
    }
    yield* sql`DELETE FROM tb_holds WHERE state <> 'open' AND closed_at < ${now - CLOSED_HOLD_TTLS * ttlMillis}`
    return reclaimed
  })
