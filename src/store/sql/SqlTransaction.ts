/**
 * `StoreTransaction` on SQL: a real transaction. Repository calls inside it nest as
 * savepoints, so one that fails (say, with `AlreadyExists`) rolls back only itself
 * and the unit can go on or fail as it chooses.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { Duration, Effect, Option } from "effect"
import type { StoreUnavailable } from "../../domain/Errors.js"
import type { StoreTransactionShape } from "../StoreTransaction.js"
import { guard } from "./SqlErrors.js"

/** @since 0.1.0 */
export const make = (sql: SqlClient, timeout: Option.Option<Duration.Duration>): StoreTransactionShape => ({
  run: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreUnavailable, R> =>
    guard("transaction", timeout)(sql.withTransaction(effect))
})
