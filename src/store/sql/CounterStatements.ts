/**
 * The statements over `tb_counters`: keeping a scope's copy of its limits in step with
 * its entity, locking the counters of a ledger step in key order, writing what the step
 * changed, and making the counters a step finds missing.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { Effect, Either, Option, Schema } from "effect"
import * as BudgetDuration from "../../domain/BudgetDuration.js"
import * as BudgetWindow from "../../domain/BudgetWindow.js"
import type { CorruptRecord, EntityKind } from "../../domain/Errors.js"
import { EndUserId, KeyHash, OrganizationId, TeamId, UserId } from "../../domain/Ids.js"
import type * as Limits from "../../domain/Limits.js"
import * as Money from "../../domain/Money.js"
import * as Scope from "../../domain/Scope.js"
import { GLOBAL_BUDGET_ID } from "../BudgetRepo.js"
import { MoneyColumn, nullable } from "./Columns.js"
import type { Counter } from "./Counters.js"
import * as Dialect from "./Dialect.js"
import { rowDecoder } from "./SqlErrors.js"

const durationText = (duration: Option.Option<BudgetDuration.BudgetDuration>): string | null =>
  Option.getOrNull(Option.map(duration, BudgetDuration.format))

const windowEnd = (duration: Option.Option<BudgetDuration.BudgetDuration>, anchor: number): number | null =>
  Option.isSome(duration) ? BudgetWindow.boundary(anchor, duration.value, 1) : null

/**
 * Keeps a scope's counter in step with its limits, in the caller's transaction. With
 * `restart` (a new window length, or a new row with one) a new window starts now with
 * nothing spent in it; the lifetime total always stays. Without it, the counter is
 * made when missing and only the copy of the cap changes.
 *
 * @since 0.1.0
 */
export const syncScope = (
  sql: SqlClient,
  key: string,
  limits: Limits.Limits | undefined,
  now: number,
  restart: boolean
): Effect.Effect<void, SqlError> => {
  const duration = limits === undefined ? Option.none() : limits.budgetDuration
  const maxBudget = limits === undefined ? null : Option.getOrNull(limits.maxBudget)
  const values = sql`(${key}, 0, 0, 0, ${now}, ${now}, ${windowEnd(duration, now)}, ${maxBudget}, ${durationText(duration)})`
  const update = restart
    ? sql`max_budget = excluded.max_budget, budget_duration = excluded.budget_duration,
        anchor = excluded.anchor, window_start = excluded.window_start, window_end = excluded.window_end,
        window_spend = 0`
    : sql`max_budget = excluded.max_budget, budget_duration = excluded.budget_duration`
  return Effect.asVoid(sql`INSERT INTO tb_counters
    (scope_key, total, window_spend, held, anchor, window_start, window_end, max_budget, budget_duration)
    VALUES ${values}
    ON CONFLICT (scope_key) DO UPDATE SET ${update}`)
}

/** Forgets the counters of deleted scopes. @since 0.1.0 */
export const deleteScopes = (sql: SqlClient, keys: ReadonlyArray<string>): Effect.Effect<void, SqlError> =>
  keys.length === 0
    ? Effect.void
    : Effect.asVoid(sql`DELETE FROM tb_counters WHERE ${sql.in("scope_key", keys)}`)

/**
 * Reads the counters of `keys`, locking them in key order on PostgreSQL (SQLite
 * serialises writers), so two steps over overlapping scopes queue instead of
 * deadlocking. Keys without a counter are simply absent from the result. Each row
 * also tells (`expired`, not NULL) whether any open hold has expired by `now`, so a
 * step learns it must reclaim first without another round trip.
 *
 * @since 0.1.0
 */
export const lock = (sql: SqlClient, keys: ReadonlyArray<string>, now: number) =>
  select(sql, keys, now, Dialect.forUpdate(sql))

/**
 * Reads the counters of `keys` as {@link lock} does, without locking them: for a
 * decision that writes nothing.
 *
 * @since 0.1.0
 */
export const peek = (sql: SqlClient, keys: ReadonlyArray<string>, now: number) =>
  select(sql, keys, now, sql.literal(""))

const select = (sql: SqlClient, keys: ReadonlyArray<string>, now: number, locking: Fragment) =>
  sql<Record<string, unknown>>`SELECT scope_key, total, window_spend, held, anchor, window_start, window_end,
    max_budget, budget_duration,
    (SELECT 1 FROM tb_holds WHERE state = 'open' AND expires_at <= ${now} LIMIT 1) AS expired
    FROM tb_counters WHERE ${sql.in("scope_key", keys)} ORDER BY scope_key${locking}`

/** Writes back what a ledger step changed in a counter. @since 0.1.0 */
export const write = (sql: SqlClient, counter: Counter): Effect.Effect<void, SqlError> =>
  Effect.asVoid(sql`UPDATE tb_counters SET total = ${counter.total}, window_spend = ${counter.windowSpend},
    held = ${counter.held}, window_start = ${counter.windowStart},
    window_end = ${Option.getOrNull(counter.windowEnd)} WHERE scope_key = ${counter.key}`)

/** Adds `amount` to what every counter of `keys` holds (a new hold). @since 0.1.0 */
export const addHeld = (sql: SqlClient, keys: ReadonlyArray<string>, amount: Money.Money) =>
  Effect.asVoid(sql`UPDATE tb_counters SET held = held + ${amount} WHERE ${sql.in("scope_key", keys)}`)

/**
 * Gives back `unheld` (floored at zero) and charges `cost` on every counter of `keys`,
 * whose windows are already current.
 *
 * @since 0.1.0
 */
export const charge = (sql: SqlClient, keys: ReadonlyArray<string>, unheld: Money.Money, cost: Money.Money) =>
  Effect.asVoid(sql`UPDATE tb_counters SET
    held = CASE WHEN held > ${unheld} THEN held - ${unheld} ELSE 0 END,
    total = total + ${cost}, window_spend = window_spend + ${cost}
    WHERE ${sql.in("scope_key", keys)}`)

const LimitRow = Schema.Struct({
  max_budget: nullable(MoneyColumn),
  budget_duration: nullable(BudgetDuration.FromString)
})

const entityOfRef = (ref: Scope.ScopeRef): EntityKind => (ref.kind === "global" ? "budget" : ref.kind)

/** The cap and window length a scope has right now, read from its entity. */
const limitsOf = (sql: SqlClient, ref: Scope.ScopeRef) => {
  const query = (() => {
    switch (ref.kind) {
      case "key":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_keys WHERE hash = ${ref.id}`
      case "user":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_users WHERE user_id = ${ref.id}`
      case "team":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_teams WHERE team_id = ${ref.id}`
      case "organization":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_organizations WHERE organization_id = ${ref.id}`
      case "end_user":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_end_users WHERE end_user_id = ${ref.id}`
      case "membership":
        return sql<Record<string, unknown>>`SELECT b.max_budget, b.budget_duration
          FROM tb_memberships m JOIN tb_budgets b ON b.budget_id = m.budget_id
          WHERE m.team_id = ${ref.teamId} AND m.user_id = ${ref.userId}`
      case "global":
        return sql<
          Record<string, unknown>
        >`SELECT max_budget, budget_duration FROM tb_budgets WHERE budget_id = ${GLOBAL_BUDGET_ID}`
    }
  })()
  const decode = rowDecoder(entityOfRef(ref), LimitRow, () => Scope.displayId(ref))
  return Effect.flatMap(query, (rows) => {
    const row = rows[0]
    if (row === undefined) return Effect.succeed(Option.none())
    return Either.match(decode(row), {
      onLeft: (error) => Effect.fail(error),
      onRight: (limits) => Effect.succeed(Option.some(limits))
    })
  })
}

/**
 * The counters a step finds missing, as they would be made now: nothing spent, each
 * with the limits its entity has now (an end user without a row, or a global scope
 * without a budget, has no cap but its spend is counted all the same). Nothing is
 * written; {@link insert} writes them.
 *
 * @since 0.1.0
 */
export const fresh = (
  sql: SqlClient,
  keys: ReadonlyArray<string>,
  refs: ReadonlyMap<string, Scope.ScopeRef>,
  now: number
): Effect.Effect<ReadonlyArray<Counter>, SqlError | CorruptRecord> =>
  Effect.gen(function* () {
    const counters: Array<Counter> = []
    for (const key of [...keys].sort(compareKeys)) {
      const ref = Option.orElse(Option.fromNullable(refs.get(key)), () => refOfKey(key))
      const limits = Option.isSome(ref) ? yield* limitsOf(sql, ref.value) : Option.none()
      const duration = Option.flatMap(limits, (l) => l.budget_duration)
      counters.push({
        key,
        total: Money.zero,
        windowSpend: Money.zero,
        held: Money.zero,
        anchor: now,
        windowStart: now,
        windowEnd: Option.fromNullable(windowEnd(duration, now)),
        maxBudget: Option.flatMap(limits, (l) => l.max_budget),
        duration
      })
    }
    return counters
  })

/**
 * Writes counters made by {@link fresh} (nothing spent in them); one another step made
 * meanwhile is kept as it is. Runs on its own, before the step's transaction, so that
 * transaction locks every counter in one ordered batch.
 *
 * @since 0.1.0
 */
export const insert = (sql: SqlClient, counters: ReadonlyArray<Counter>): Effect.Effect<void, SqlError> => {
  if (counters.length === 0) return Effect.void
  const rows = counters.map(
    (c) =>
      sql`(${c.key}, 0, 0, 0, ${c.anchor}, ${c.windowStart}, ${Option.getOrNull(c.windowEnd)}, ${Option.getOrNull(c.maxBudget)}, ${durationText(c.duration)})`
  )
  return Effect.asVoid(sql`INSERT INTO tb_counters
    (scope_key, total, window_spend, held, anchor, window_start, window_end, max_budget, budget_duration)
    VALUES ${sql.csv(rows)} ON CONFLICT (scope_key) DO NOTHING`)
}

/** Makes the missing counters of a step: {@link fresh}, then {@link insert}. @since 0.1.0 */
export const ensure = (
  sql: SqlClient,
  keys: ReadonlyArray<string>,
  refs: ReadonlyMap<string, Scope.ScopeRef>,
  now: number
): Effect.Effect<void, SqlError | CorruptRecord> =>
  Effect.flatMap(fresh(sql, keys, refs, now), (counters) => insert(sql, counters))

/**
 * The one order every step locks counters in. Plain code-unit order, which is what
 * PostgreSQL's `ORDER BY` uses under the `C` collation and SQLite always uses; the
 * lock order itself comes from the database's `ORDER BY`, this only sorts inserts.
 *
 * @since 0.1.0
 */
export const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const decodeTeamId = Schema.decodeUnknownOption(TeamId)
const decodeUserId = Schema.decodeUnknownOption(UserId)
const decodeOrganizationId = Schema.decodeUnknownOption(OrganizationId)
const decodeEndUserId = Schema.decodeUnknownOption(EndUserId)
const decodeKeyHash = Schema.decodeUnknownOption(KeyHash)

/**
 * The scope a stored key names (the inverse of `Scope.key`; a key scope comes back
 * without its label). Used for holds whose scopes are known only by their keys.
 *
 * @since 0.1.0
 */
export const refOfKey = (key: string): Option.Option<Scope.ScopeRef> => {
  const colon = key.indexOf(":")
  const kind = key.slice(0, colon)
  const rest = key.slice(colon + 1)
  switch (kind) {
    case "key":
      return Option.map(decodeKeyHash(rest), (id): Scope.ScopeRef => ({ kind: "key", id, label: "" }))
    case "user":
      return Option.map(decodeUserId(rest), (id): Scope.ScopeRef => ({ kind: "user", id }))
    case "team":
      return Option.map(decodeTeamId(rest), (id): Scope.ScopeRef => ({ kind: "team", id }))
    case "organization":
      return Option.map(decodeOrganizationId(rest), (id): Scope.ScopeRef => ({ kind: "organization", id }))
    case "end_user":
      return Option.map(decodeEndUserId(rest), (id): Scope.ScopeRef => ({ kind: "end_user", id }))
    case "global":
      return Option.some({ kind: "global" })
    case "membership": {
      const sep = rest.indexOf(":")
      const length = Number(rest.slice(0, sep))
      if (sep < 1 || !Number.isSafeInteger(length)) return Option.none()
      const body = rest.slice(sep + 1)
      return Option.zipWith(
        decodeTeamId(body.slice(0, length)),
        decodeUserId(body.slice(length)),
        (teamId, userId): Scope.ScopeRef => ({ kind: "membership", teamId, userId })
      )
    }
    default:
      return Option.none()
  }
}
