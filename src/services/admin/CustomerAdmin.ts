/**
 * Customer (end user) operations: create, change, read (the master only).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { CustomerInfo, CustomerNew, CustomerUpdate } from "../../api/CustomerRequests.js"
import { toLimits, toLimitsPatch } from "../../api/Fields.js"
import type { Caller } from "../../domain/Principal.js"
import type { EndUserPatch } from "../../store/EndUserRepo.js"
import { type AdminPorts, found, read, write } from "./AdminPorts.js"
import { requireMaster } from "./Policy.js"

const customerPatch = (request: CustomerUpdate): EndUserPatch => {
  const limits = toLimitsPatch(request)
  return {
    ...(Object.keys(limits).length === 0 ? {} : { limits }),
    ...(request.blocked === undefined ? {} : { blocked: request.blocked })
  }
}

/** @since 0.1.0 */
export const make = (ports: AdminPorts) => {
  const { endUsers } = ports

  return {
    /** Creates a customer: the end user named by the `user` field of requests. */
    customerNew: Effect.fn("Admin.customerNew")(function* (caller: Caller, request: CustomerNew) {
      yield* requireMaster(caller, "create customers")
      return yield* write(ports)(
        endUsers.insert({ endUserId: request.endUserId, limits: toLimits(request), blocked: request.blocked })
      )
    }),

    /** Changes a customer: absent fields stay, cleared fields become none. */
    customerUpdate: Effect.fn("Admin.customerUpdate")(function* (caller: Caller, request: CustomerUpdate) {
      yield* requireMaster(caller, "change customers")
      return yield* write(ports)(endUsers.update(request.endUserId, customerPatch(request)))
    }),

    /** A customer's settings and spend. */
    customerInfo: Effect.fn("Admin.customerInfo")(function* (caller: Caller, request: CustomerInfo) {
      yield* requireMaster(caller, "read customers")
      return yield* read(ports)(found("end_user", request.endUserId)(endUsers.find(request.endUserId)))
    })
  }
}
