/**
 * The management operations by name (`"team/new"`, `"key/info"`), over the one
 * endpoint table of {@link Routes}: the HTTP API and in-process callers run exactly the
 * same decoding, authorisation and rendering.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { InvalidRequest, type TeamBudgetError } from "../domain/Errors.js"
import type { Caller } from "../domain/Principal.js"
import type { Admin } from "../services/Admin.js"
import * as Routes from "./Routes.js"

/**
 * An operation's name: its path without the leading slash, such as `"team/member_update"`.
 *
 * @since 0.1.0
 */
export type OperationName = string

/** The names of every operation, in table order. @since 0.1.0 */
export const names: ReadonlyArray<OperationName> = Routes.routes.map((route) => route.path.slice(1))

/**
 * The endpoint of an operation name; a leading slash is accepted.
 *
 * @since 0.1.0
 */
export const find = (name: OperationName): Option.Option<Routes.Route> => {
  const path = name.startsWith("/") ? name : `/${name}`
  return Option.fromNullable(Routes.routes.find((route) => route.path === path))
}

/**
 * Runs one operation as `caller` with `input` as the HTTP API would receive it (the
 * JSON body of a POST, the query parameters of a GET): the same field names, the same
 * absent / `null` / value rules (SPEC 4), the same result JSON.
 *
 * @example
 * const team = yield* Operations.invoke("team/new", Principal.master, { team_alias: "research", max_budget: 1000 })
 * // { team_id: "...", team_alias: "research", max_budget: 1000, ... }
 * @since 0.1.0
 */
export const invoke = (
  name: OperationName,
  caller: Caller,
  input: unknown
): Effect.Effect<unknown, TeamBudgetError, Admin> =>
  Option.match(find(name), {
    onNone: () =>
      Effect.fail(
        new InvalidRequest({
          path: "operation",
          detail: `no management operation is named ${JSON.stringify(name)}`
        })
      ),
    onSome: (route) => route.handle(caller, input)
  })
