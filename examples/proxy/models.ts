/**
 * `GET /v1/models`: the models this proxy serves that the caller's key may use — the
 * same allow-lists the budget policy applies (key, then team or user, then
 * organization; an empty list allows everything).
 */
import { Effect, Option } from "effect"
import { AuthenticationFailed, ErrorResponse, KeyAuth, type Principal } from "../../src/index.js"

const bearer = (request: Request): Option.Option<string> => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")
  return Option.fromNullable(match?.[1])
}

const allows = (list: ReadonlyArray<string>, model: string): boolean =>
  list.length === 0 || list.includes(model)

/** Whether every allow-list of the principal lets it use `model`. */
export const mayUse = (principal: Principal.Principal, model: string): boolean => {
  const { key, team, user, organization } = principal
  if (!allows(key.models, model)) return false
  if (Option.isSome(team)) {
    if (!allows(team.value.models, model)) return false
  } else if (Option.isSome(user) && !allows(user.value.models, model)) return false
  return Option.isNone(organization) || allows(organization.value.models, model)
}

export const handler =
  (served: ReadonlyArray<string>) =>
  (
    request: Request,
    seen: (principal: Principal.Principal) => void
  ): Effect.Effect<Response, never, KeyAuth.KeyAuth> =>
    Effect.gen(function* () {
      const token = bearer(request)
      if (Option.isNone(token)) return yield* new AuthenticationFailed({ reason: "missing" })
      const principal = yield* Effect.flatMap(KeyAuth.KeyAuth, (auth) => auth.authenticate(token.value))
      seen(principal)
      return ErrorResponse.json(200, {
        object: "list",
        data: served
          .filter((model) => mayUse(principal, model))
          .map((id) => ({ id, object: "model", created: 0, owned_by: "teambudget" }))
      })
    }).pipe(Effect.catchAll((error) => Effect.succeed(ErrorResponse.fromError(error))))
