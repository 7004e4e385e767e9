/**
 * Team operations: create, change, delete, read, and manage members.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { toLimits, toLimitsPatch } from "../../api/Fields.js"
import type {
  TeamDelete,
  TeamInfo,
  TeamMemberAdd,
  TeamMemberDelete,
  TeamMemberUpdate,
  TeamNew,
  TeamUpdate
} from "../../api/TeamRequests.js"
import { AlreadyExists, InvalidRequest } from "../../domain/Errors.js"
import { TeamId, type OrganizationId, type UserId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import type { Caller } from "../../domain/Principal.js"
import type { Team } from "../../domain/Team.js"
import type { TeamMembership } from "../../domain/TeamMembership.js"
import type { User } from "../../domain/User.js"
import type { VirtualKey } from "../../domain/VirtualKey.js"
import type { MemberDraft, MembershipPatch } from "../../store/MembershipRepo.js"
import type { TeamPatch } from "../../store/TeamRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireMaster, requireTeamManager } from "./Policy.js"

/** What `/team/info` shows. @since 0.1.0 */
export interface TeamDetails {
  readonly team: Team
  readonly memberships: ReadonlyArray<TeamMembership>
  readonly keys: ReadonlyArray<VirtualKey>
}

/** What `/team/member_add` did: the team, every added member's user, the new memberships. @since 0.1.0 */
export interface MembersAdded {
  readonly team: Team
  readonly users: ReadonlyArray<User>
  readonly memberships: ReadonlyArray<TeamMembership>
}

const membershipId = (teamId: TeamId, userId: UserId): string => `${teamId}/${userId}`

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { teams, users, organizations, memberships, keys } = ports

  const findTeam = (teamId: TeamId) => found("team", teamId)(teams.find(teamId))

  const findOrganization = (organizationId: OrganizationId) =>
    found("organization", organizationId)(organizations.find(organizationId))

  const requireOrganization = (organizationId: Option.Option<OrganizationId>) =>
    Option.match(organizationId, {
      onNone: () => Effect.void,
      onSome: (id) => Effect.asVoid(findOrganization(id))
    })

  const findMembership = (teamId: TeamId, userId: UserId) =>
    found("membership", membershipId(teamId, userId))(memberships.find(teamId, userId))

  const teamPatch = (request: TeamUpdate): TeamPatch => {
    const limits = toLimitsPatch(request)
    return {
      ...(request.teamAlias === undefined ? {} : { teamAlias: request.teamAlias }),
      ...(request.organizationId === undefined ? {} : { organizationId: request.organizationId }),
      ...(Object.keys(limits).length === 0 ? {} : { limits }),
      ...(request.models === undefined ? {} : { models: request.models }),
      ...(request.blocked === undefined ? {} : { blocked: request.blocked }),
      ...(request.metadata === undefined ? {} : { metadata: request.metadata })
    }
  }

  const memberPatch = (request: TeamMemberUpdate): MembershipPatch => {
    const limits = toLimitsPatch(request)
    return {
      ...(request.role === undefined ? {} : { role: request.role }),
      ...(Object.keys(limits).length === 0 ? {} : { limits })
    }
  }

  return {
    /**
     * Creates a team; its id is generated when the request has none. The
     * organization, when named, must exist.
     */
    teamNew: Effect.fn("Admin.teamNew")(function* (caller: Caller, request: TeamNew) {
      yield* requireMaster(caller, "create teams")
      return yield* write(ports)(
        Effect.gen(function* () {
          yield* requireOrganization(request.organizationId)
          return yield* teams.insert({
            teamId: Option.getOrElse(request.teamId, () => TeamId.make(crypto.randomUUID())),
            teamAlias: request.teamAlias,
            organizationId: request.organizationId,
            limits: toLimits(request),
            models: request.models,
            blocked: request.blocked,
            metadata: request.metadata
          })
        })
      )
    }),

    /** Changes a team's own settings: absent fields stay, cleared fields become none. */
    teamUpdate: Effect.fn("Admin.teamUpdate")(function* (caller: Caller, request: TeamUpdate) {
      yield* requireMaster(caller, "change a team's settings")
      return yield* write(ports)(
        Effect.gen(function* () {
          yield* findTeam(request.teamId)
          if (request.organizationId !== undefined) yield* requireOrganization(request.organizationId)
          return yield* teams.update(request.teamId, teamPatch(request))
        })
      )
    }),

    /** Deletes teams with their memberships and keys: all of them or none. */
    teamDelete: Effect.fn("Admin.teamDelete")(function* (caller: Caller, request: TeamDelete) {
      yield* requireMaster(caller, "delete teams")
      const teamIds = [...new Set(request.teamIds)]
      return yield* write(ports)(
        Effect.gen(function* () {
          const deleted = yield* Effect.forEach(teamIds, findTeam)
          yield* teams.delete(teamIds)
          return deleted
        })
      )
    }),

    /** A team with its memberships (each with its own budget or none) and its keys. */
    teamInfo: Effect.fn("Admin.teamInfo")(function* (caller: Caller, request: TeamInfo) {
      yield* requireTeamManager(caller, "read this team", request.teamId)
      return yield* read(ports)(
        Effect.gen(function* () {
          const team = yield* findTeam(request.teamId)
          const members = yield* memberships.listByTeam(request.teamId)
          const teamKeys = yield* keys.listByTeam(request.teamId)
          const details: TeamDetails = { team, memberships: members, keys: teamKeys }
          return details
        })
      )
    }),

    /**
     * Adds members, creating the users that do not exist yet (as `internal_user`).
     * With `max_budget_in_team` each new member gets a budget of their own.
     */
    memberAdd: Effect.fn("Admin.memberAdd")(function* (caller: Caller, request: TeamMemberAdd) {
      yield* requireTeamManager(caller, "add team members", request.teamId)
      const seen = new Set<UserId>()
      for (const [index, member] of request.members.entries()) {
        if (seen.has(member.userId)) {
          return yield* new InvalidRequest({
            path: `member.${index}.user_id`,
            detail: `user ${member.userId} is listed twice`
          })
        }
        seen.add(member.userId)
      }
      const limits = Option.map(request.maxBudgetInTeam, (maxBudget) =>
        Limits.patch(Limits.none, { maxBudget: Option.some(maxBudget) })
      )
      return yield* write(ports)(
        Effect.gen(function* () {
          const team = yield* findTeam(request.teamId)
          // Everything is checked before the first write: a memory store cannot roll back.
          const existing = yield* Effect.forEach(request.members, (member) =>
            Effect.gen(function* () {
              if (Option.isSome(yield* memberships.find(request.teamId, member.userId))) {
                return yield* new AlreadyExists({
                  entity: "membership",
                  id: membershipId(request.teamId, member.userId)
                })
              }
              return yield* users.find(member.userId)
            })
          )
          const added: Array<User> = []
          for (const [index, member] of request.members.entries()) {
            const user = existing[index]
            if (user !== undefined && Option.isSome(user)) {
              added.push(user.value)
            } else {
              added.push(
                yield* users.insert({
                  userId: member.userId,
                  userEmail: member.userEmail,
                  userRole: "internal_user",
                  limits: Limits.none,
                  models: [],
                  blocked: false,
                  metadata: {}
                })
              )
            }
          }
          const drafts: ReadonlyArray<MemberDraft> = request.members.map((member) => ({
            userId: member.userId,
            role: member.role,
            limits
          }))
          const created = yield* memberships.add(request.teamId, drafts)
          const result: MembersAdded = { team, users: added, memberships: created }
          return result
        })
      )
    }),

    /**
     * Changes a member's role and own limits. Clearing the last limit (for example
     * `max_budget_in_team: null`) leaves the member without a budget of their own:
     * the team pool still binds.
     */
    memberUpdate: Effect.fn("Admin.memberUpdate")(function* (caller: Caller, request: TeamMemberUpdate) {
      yield* requireTeamManager(caller, "change team members", request.teamId)
      return yield* write(ports)(
        Effect.gen(function* () {
          yield* findTeam(request.teamId)
          yield* findMembership(request.teamId, request.userId)
          return yield* memberships.update(request.teamId, request.userId, memberPatch(request))
        })
      )
    }),

    /** Removes a member from a team; returns the membership as it was. */
    memberDelete: Effect.fn("Admin.memberDelete")(function* (caller: Caller, request: TeamMemberDelete) {
      yield* requireTeamManager(caller, "remove team members", request.teamId)
      return yield* write(ports)(
        Effect.gen(function* () {
          yield* findTeam(request.teamId)
          const membership = yield* findMembership(request.teamId, request.userId)
          yield* memberships.remove(request.teamId, request.userId)
          return membership
        })
      )
    })
  }
}
