/**
 * The management endpoints as data: method, path, request schema, the `Admin`
 * operation and the renderer. An HTTP layer needs only {@link find} and a caller:
 * it passes the JSON body (POST) or the query parameters (GET) as `input`.
 *
 * @since 0.1.0
 */
import { Effect, Option, Schema } from "effect"
import type { InvalidRequest } from "../domain/Errors.js"
import type { Caller } from "../domain/Principal.js"
import { Admin, type AdminError } from "../services/Admin.js"
import { GlobalBudgetUpdate } from "./BudgetRequests.js"
import { CustomerInfo, CustomerNew, CustomerUpdate } from "./CustomerRequests.js"
import { decodeRequest } from "./Decode.js"
import { KeyBlock, KeyDelete, KeyGenerate, KeyInfo, KeyUpdate } from "./KeyRequests.js"
import { OrganizationInfo, OrganizationNew, OrganizationUpdate } from "./OrganizationRequests.js"
import * as Render from "./Render.js"
import { SpendLogs } from "./SpendRequests.js"
import {
  TeamDelete,
  TeamInfo,
  TeamMemberAdd,
  TeamMemberDelete,
  TeamMemberUpdate,
  TeamNew,
  TeamUpdate
} from "./TeamRequests.js"
import { UserInfo, UserNew, UserUpdate } from "./UserRequests.js"

/** @since 0.1.0 */
export type Method = "GET" | "POST"

/**
 * One endpoint. `handle` decodes `input` (refusing unknown fields), authorises the
 * caller, runs the operation and renders LiteLLM's JSON.
 *
 * @since 0.1.0
 */
export interface Route<Out = unknown> {
  readonly method: Method
  readonly path: string
  readonly handle: (caller: Caller, input: unknown) => Effect.Effect<Out, AdminError | InvalidRequest, Admin>
}

/** What an endpoint answers: the LiteLLM JSON it renders. @since 0.1.0 */
export type Output<R> = R extends Route<infer Out> ? Out : never

const route = <A, I, B, Out>(
  method: Method,
  path: string,
  schema: Schema.Schema<A, I>,
  run: (admin: Admin, caller: Caller, request: A) => Effect.Effect<B, AdminError>,
  render: (result: B) => Out
): Route<Out> => ({
  method,
  path,
  handle: (caller, input) =>
    Effect.gen(function* () {
      const request = yield* decodeRequest(schema)(input)
      const admin = yield* Admin
      return render(yield* run(admin, caller, request))
    })
})

/**
 * Every management endpoint of SPEC 11.1, plus the global budget, by method name
 * (`teamNew` is `POST /team/new`).
 *
 * @since 0.1.0
 */
export const byName = {
  teamNew: route("POST", "/team/new", TeamNew, (a, c, r) => a.teamNew(c, r), Render.team),
  teamUpdate: route("POST", "/team/update", TeamUpdate, (a, c, r) => a.teamUpdate(c, r), Render.team),
  teamMemberAdd: route(
    "POST",
    "/team/member_add",
    TeamMemberAdd,
    (a, c, r) => a.memberAdd(c, r),
    Render.membersAdded
  ),
  teamMemberUpdate: route(
    "POST",
    "/team/member_update",
    TeamMemberUpdate,
    (a, c, r) => a.memberUpdate(c, r),
    Render.membership
  ),
  teamMemberDelete: route(
    "POST",
    "/team/member_delete",
    TeamMemberDelete,
    (a, c, r) => a.memberDelete(c, r),
    Render.memberDeleted
  ),
  teamInfo: route("GET", "/team/info", TeamInfo, (a, c, r) => a.teamInfo(c, r), Render.teamInfo),
  teamDelete: route("POST", "/team/delete", TeamDelete, (a, c, r) => a.teamDelete(c, r), Render.teamsDeleted),
  keyGenerate: route(
    "POST",
    "/key/generate",
    KeyGenerate,
    (a, c, r) => a.keyGenerate(c, r),
    Render.generatedKey
  ),
  keyUpdate: route("POST", "/key/update", KeyUpdate, (a, c, r) => a.keyUpdate(c, r), Render.key),
  keyInfo: route("GET", "/key/info", KeyInfo, (a, c, r) => a.keyInfo(c, r), Render.keyInfo),
  keyDelete: route("POST", "/key/delete", KeyDelete, (a, c, r) => a.keyDelete(c, r), Render.keysDeleted),
  keyBlock: route("POST", "/key/block", KeyBlock, (a, c, r) => a.keyBlock(c, r), Render.key),
  keyUnblock: route("POST", "/key/unblock", KeyBlock, (a, c, r) => a.keyUnblock(c, r), Render.key),
  userNew: route("POST", "/user/new", UserNew, (a, c, r) => a.userNew(c, r), Render.user),
  userUpdate: route("POST", "/user/update", UserUpdate, (a, c, r) => a.userUpdate(c, r), Render.user),
  userInfo: route("GET", "/user/info", UserInfo, (a, c, r) => a.userInfo(c, r), Render.userInfo),
  organizationNew: route(
    "POST",
    "/organization/new",
    OrganizationNew,
    (a, c, r) => a.organizationNew(c, r),
    Render.organization
  ),
  organizationUpdate: route(
    "POST",
    "/organization/update",
    OrganizationUpdate,
    (a, c, r) => a.organizationUpdate(c, r),
    Render.organization
  ),
  organizationInfo: route(
    "GET",
    "/organization/info",
    OrganizationInfo,
    (a, c, r) => a.organizationInfo(c, r),
    Render.organization
  ),
  customerNew: route("POST", "/customer/new", CustomerNew, (a, c, r) => a.customerNew(c, r), Render.customer),
  customerUpdate: route(
    "POST",
    "/customer/update",
    CustomerUpdate,
    (a, c, r) => a.customerUpdate(c, r),
    Render.customer
  ),
  customerInfo: route(
    "GET",
    "/customer/info",
    CustomerInfo,
    (a, c, r) => a.customerInfo(c, r),
    Render.customer
  ),
  spendLogs: route("GET", "/spend/logs", SpendLogs, (a, c, r) => a.spendLogs(c, r), Render.spendLogs),
  globalBudgetUpdate: route(
    "POST",
    "/global/budget/update",
    GlobalBudgetUpdate,
    (a, c, r) => a.globalBudgetUpdate(c, r),
    Render.budget
  ),
  globalBudgetInfo: route(
    "GET",
    "/global/budget/info",
    Schema.Struct({}),
    (a, c) => a.globalBudgetInfo(c),
    (budget) => Option.match(budget, { onNone: () => null, onSome: Render.budget })
  )
}

/**
 * Every endpoint, in table order.
 *
 * @since 0.1.0
 */
export const routes: ReadonlyArray<Route> = Object.values(byName)

/**
 * The endpoint for a method and path, if there is one.
 *
 * @example
 * const route = Routes.find("POST", "/team/new")
 * @since 0.1.0
 */
export const find = (method: Method, path: string): Option.Option<Route> =>
  Option.fromNullable(routes.find((candidate) => candidate.method === method && candidate.path === path))
