/**
 * User operations: create, change, read. Only the master manages users: a user's own
 * budget is not a team's to change.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { toLimits, toLimitsPatch } from "../../api/Fields.js"
import type { UserInfo, UserNew, UserUpdate } from "../../api/UserRequests.js"
import { UserId } from "../../domain/Ids.js"
import type { Caller } from "../../domain/Principal.js"
import type { Team } from "../../domain/Team.js"
import type { TeamMembership } from "../../domain/TeamMembership.js"
import type { User } from "../../domain/User.js"
import type { VirtualKey } from "../../domain/VirtualKey.js"
import type { UserPatch } from "../../store/UserRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireMaster } from "./Policy.js"

/** What `/user/info` shows. @since 0.1.0 */
export interface UserDetails {
  readonly user: User
  readonly memberships: ReadonlyArray<TeamMembership>
  readonly teams: ReadonlyArray<Team>
  readonly keys: ReadonlyArray<VirtualKey>
}

const userPatch = (request: UserUpdate): UserPatch => {
  const limits = toLimitsPatch(request)
  return {
    ...(request.userEmail === undefined ? {} : { userEmail: request.userEmail }),
    ...(request.userRole === undefined ? {} : { userRole: request.userRole }),
    ...(Object.keys(limits).length === 0 ? {} : { limits }),
    ...(request.models === undefined ? {} : { models: request.models }),
    ...(request.blocked === undefined ? {} : { blocked: request.blocked }),
    ...(request.metadata === undefined ? {} : { metadata: request.metadata })
  }
}

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { users, memberships, teams, keys } = ports

  return {
    /** Creates a user; its id is generated when the request has none. */
    userNew: Effect.fn("Admin.userNew")(function* (caller: Caller, request: UserNew) {
      yield* requireMaster(caller, "create users")
      return yield* write(ports)(
        users.insert({
          userId: Option.getOrElse(request.userId, () => UserId.make(crypto.randomUUID())),
          userEmail: request.userEmail,
          userRole: request.userRole,
          limits: toLimits(request),
          models: request.models,
          blocked: request.blocked,
          metadata: request.metadata
        })
      )
    }),

    /** Changes a user: absent fields stay, cleared fields become none. */
    userUpdate: Effect.fn("Admin.userUpdate")(function* (caller: Caller, request: UserUpdate) {
      yield* requireMaster(caller, "change users")
      return yield* write(ports)(users.update(request.userId, userPatch(request)))
    }),

    /** A user with their memberships, their teams and their keys. */
    userInfo: Effect.fn("Admin.userInfo")(function* (caller: Caller, request: UserInfo) {
      yield* requireMaster(caller, "read users")
      return yield* read(ports)(
        Effect.gen(function* () {
          const user = yield* found("user", request.userId)(users.find(request.userId))
          const joined = yield* memberships.listByUser(request.userId)
          const userTeams = yield* Effect.forEach(joined, (membership) => teams.find(membership.teamId))
          const userKeys = yield* keys.listByUser(request.userId)
          const details: UserDetails = {
            user,
            memberships: joined,
            teams: userTeams.flatMap((team) => (Option.isSome(team) ? [team.value] : [])),
            keys: userKeys
          }
          return details
        })
      )
    })
  }
}
