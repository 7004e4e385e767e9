/**
 * Organization operations: create, change, read (the master only).
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { toLimits, toLimitsPatch } from "../../api/Fields.js"
import type { OrganizationInfo, OrganizationNew, OrganizationUpdate } from "../../api/OrganizationRequests.js"
import { OrganizationId } from "../../domain/Ids.js"
import type { Caller } from "../../domain/Principal.js"
import type { OrganizationPatch } from "../../store/OrganizationRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireMaster } from "./Policy.js"

const organizationPatch = (request: OrganizationUpdate): OrganizationPatch => {
  const limits = toLimitsPatch(request)
  return {
    ...(request.organizationAlias === undefined ? {} : { organizationAlias: request.organizationAlias }),
    ...(Object.keys(limits).length === 0 ? {} : { limits }),
    ...(request.models === undefined ? {} : { models: request.models }),
    ...(request.blocked === undefined ? {} : { blocked: request.blocked })
  }
}

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { organizations } = ports

  return {
    /** Creates an organization; its id is generated when the request has none. */
    organizationNew: Effect.fn("Admin.organizationNew")(function* (caller: Caller, request: OrganizationNew) {
      yield* requireMaster(caller, "create organizations")
      return yield* write(ports)(
        organizations.insert({
          organizationId: Option.getOrElse(request.organizationId, () =>
            OrganizationId.make(crypto.randomUUID())
          ),
          organizationAlias: request.organizationAlias,
          limits: toLimits(request),
          models: request.models,
          blocked: request.blocked
        })
      )
    }),

    /** Changes an organization: absent fields stay, cleared fields become none. */
    organizationUpdate: Effect.fn("Admin.organizationUpdate")(function* (
      caller: Caller,
      request: OrganizationUpdate
    ) {
      yield* requireMaster(caller, "change organizations")
      return yield* write(ports)(organizations.update(request.organizationId, organizationPatch(request)))
    }),

    /** An organization's settings and spend. */
    organizationInfo: Effect.fn("Admin.organizationInfo")(function* (
      caller: Caller,
      request: OrganizationInfo
    ) {
      yield* requireMaster(caller, "read organizations")
      return yield* read(ports)(
        found("organization", request.organizationId)(organizations.find(request.organizationId))
      )
    })
  }
}
