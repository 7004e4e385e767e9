/**
 * Every management operation of the LiteLLM-compatible admin API (SPEC 11.1), as
 * Effect functions over the store ports.
 *
 * Each operation takes the caller and a decoded request, checks the caller's right
 * first (before reading anything), runs its reads and writes as one store
 * transaction, validates everything before its first write, and after a write tells
 * the key caches that principals may be stale.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as AdminPorts from "./admin/AdminPorts.js"
import * as CustomerAdmin from "./admin/CustomerAdmin.js"
import * as KeyAdmin from "./admin/KeyAdmin.js"
import * as OrganizationAdmin from "./admin/OrganizationAdmin.js"
import * as SpendAdmin from "./admin/SpendAdmin.js"
import * as TeamAdmin from "./admin/TeamAdmin.js"
import * as UserAdmin from "./admin/UserAdmin.js"

/** @since 0.1.0 */
export type { AdminError } from "./admin/AdminPorts.js"
/** @since 0.1.0 */
export type { GeneratedKey } from "./admin/KeyAdmin.js"
/** @since 0.1.0 */
export type { MembersAdded, TeamDetails } from "./admin/TeamAdmin.js"
/** @since 0.1.0 */
export type { UserDetails } from "./admin/UserAdmin.js"
/** @since 0.1.0 */
export { administeredTeam } from "./admin/Policy.js"

/**
 * The management service. `Admin.Default` needs every store port, `StoreTransaction`
 * and `Invalidation`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Admin, Api, Principal } from "teambudget"
 *
 * const program = Effect.gen(function* () {
 *   const admin = yield* Admin.Admin
 *   const request = yield* Api.Decode.decodeRequest(Api.TeamRequests.TeamNew)({
 *     team_alias: "research",
 *     max_budget: 1000,
 *     budget_duration: "30d"
 *   })
 *   const team = yield* admin.teamNew(Principal.master, request)
 *   return Api.Render.team(team)
 * })
 * @since 0.1.0
 */
export class Admin extends Effect.Service<Admin>()("teambudget/Admin", {
  effect: Effect.map(AdminPorts.make, (ports) => ({
    ...TeamAdmin.make(ports),
    ...KeyAdmin.make(ports),
    ...UserAdmin.make(ports),
    ...OrganizationAdmin.make(ports),
    ...CustomerAdmin.make(ports),
    ...SpendAdmin.make(ports)
  }))
}) {}
