/**
 * Who may manage what (SPEC 11.1). The master key may do everything. A key whose
 * user is an admin of the key's team may manage that team's members and keys, and
 * read that team. Any other key may only read its own `/key/info`.
 *
 * Every check here looks only at the caller, so writes are refused before anything
 * is read.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import type { TeamId } from "../../domain/Ids.js"
import type { Caller } from "../../domain/Principal.js"

/**
 * The team a caller administers: `Some(team)` for a key whose user is an admin of the
 * key's team, `None` for anyone else (the master included).
 *
 * @since 0.1.0
 */
export const administeredTeam = (caller: Caller): Option.Option<TeamId> => {
  if (caller._tag === "Master") return Option.none()
  const { key, membership } = caller.principal
  return Option.flatMap(key.teamId, (teamId) =>
    Option.isSome(membership) &&
    membership.value.role === "admin" &&
    membership.value.teamId === teamId &&
    Option.contains(key.userId, membership.value.userId)
      ? Option.some(teamId)
      : Option.none()
  )
}

/** Refuses everyone but the master. @since 0.1.0 */
export const requireMaster = (caller: Caller, action: string): Effect.Effect<void, Forbidden> =>
  caller._tag === "Master"
    ? Effect.void
    : Effect.fail(new Forbidden({ action, reason: "only the master key may do this" }))

/**
 * Admits the master (`None`: no restriction) and team admins (`Some(team)`: only
 * that team); refuses every other key.
 *
 * @since 0.1.0
 */
export const requireManager = (
  caller: Caller,
  action: string
): Effect.Effect<Option.Option<TeamId>, Forbidden> => {
  if (caller._tag === "Master") return Effect.succeed(Option.none())
  const team = administeredTeam(caller)
  return Option.isSome(team)
    ? Effect.succeed(team)
    : Effect.fail(
        new Forbidden({ action, reason: "only the master key or a key of a team admin may do this" })
      )
}

/** Admits the master and the admins of `teamId`. @since 0.1.0 */
export const requireTeamManager = (
  caller: Caller,
  action: string,
  teamId: TeamId
): Effect.Effect<void, Forbidden> =>
  Effect.flatMap(requireManager(caller, action), (scope) => requireWithin(scope, action, Option.some(teamId)))

/**
 * Refuses a team admin an entity outside its team (`teamId` none means "of no team").
 *
 * @since 0.1.0
 */
export const requireWithin = (
  scope: Option.Option<TeamId>,
  action: string,
  teamId: Option.Option<TeamId>
): Effect.Effect<void, Forbidden> =>
  Option.isNone(scope) || Option.contains(teamId, scope.value)
    ? Effect.void
    : Effect.fail(new Forbidden({ action, reason: `this key may manage team ${scope.value} only` }))
