/**
 * Every row of every table an SQL client sees (SQLite, or the current PostgreSQL
 * schema), read with raw SQL: what a store holds, with nothing interpreted.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export type Dump = Record<string, ReadonlyArray<Record<string, unknown>>>

export const dumpTables = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const tables = yield* sql.onDialectOrElse({
      pg: () =>
        sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() ORDER BY table_name`,
      orElse: () => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
    })
    const dump: Dump = {}
    for (const { name } of tables)
      dump[name] = yield* sql<Record<string, unknown>>`SELECT * FROM ${sql(name)}`
    return dump
  })

/** The client in context's dump. */
export const dump = Effect.flatMap(SqlClient.SqlClient, dumpTables)

/** A dump as text (money columns may be `bigint`). */
export const toText = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v))

/**
 * The entities and money of a dump: without the claims of budget events, which
 * instances write in the background after a settled request, not as part of any request.
 */
export const stateText = (value: Dump): string =>
  toText(Object.fromEntries(Object.entries(value).filter(([table]) => table !== "tb_event_claims")))
