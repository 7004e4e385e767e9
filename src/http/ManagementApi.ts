/**
 * The management API of SPEC 11.1 as one web-standard handler: `Request` in,
 * `Response` out, mountable in any framework.
 *
 * Every endpoint needs `Authorization: Bearer <key>`. The master key may do
 * everything; what a virtual key may do (its team, if its user is an admin there; its
 * own `/key/info` otherwise) is decided by `Admin`. `GET /health` and
 * `GET /health/readiness` need no key.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Layer, ManagedRuntime, Option, type Redacted, Runtime } from "effect"
import { AuthenticationFailed, type TeamBudgetError } from "../domain/Errors.js"
import { type Caller, master } from "../domain/Principal.js"
import * as Routes from "../api/Routes.js"
import { Admin } from "../services/Admin.js"
import { KeyAuth } from "../services/KeyAuth.js"
import * as Bearer from "./Bearer.js"
import * as Body from "./Body.js"
import * as ErrorResponse from "./ErrorResponse.js"
import { type Runner, runPromise } from "./Runner.js"

/** @since 0.1.0 */
export interface ManagementApiOptions {
  /**
   * The master key. It is compared in constant time and never logged. An empty key
   * disables it: then only team admins' keys manage anything.
   */
  readonly masterKey: Redacted.Redacted<string>
  /** The largest request body accepted. Default 1 MiB. */
  readonly maxBodyBytes?: number
}

/**
 * The API as a Promise function. `basePath` is the prefix the API is mounted under
 * (`"/admin"`), when the request's URL still carries it.
 *
 * @since 0.1.0
 */
export type ManagementHandler = (request: Request, basePath?: string) => Promise<Response>

/** The services the API runs on. @since 0.1.0 */
export type ManagementServices = Admin | KeyAuth

const isMethod = (method: string): method is Routes.Method => method === "GET" || method === "POST"

/** The path under the base path, without a trailing slash; none when it is not under it. */
const relativePath = (pathname: string, basePath: string): Option.Option<string> => {
  const base = basePath.endsWith("/") ? basePath.slice(0, -1) : basePath
  if (base !== "" && pathname !== base && !pathname.startsWith(`${base}/`)) return Option.none()
  const rest = pathname.slice(base.length)
  return Option.some(rest.length > 1 && rest.endsWith("/") ? rest.slice(0, -1) : rest === "" ? "/" : rest)
}

const authenticate = (
  request: Request,
  isMaster: ReturnType<typeof Bearer.masterKeyCheck>
): Effect.Effect<Caller, TeamBudgetError, KeyAuth> =>
  Option.match(Bearer.fromRequest(request), {
    onNone: () => Effect.fail(new AuthenticationFailed({ reason: "missing" })),
    onSome: (token) =>
      isMaster(token)
        ? Effect.succeed(master)
        : Effect.map(
            Effect.flatMap(KeyAuth, (auth) => auth.authenticate(token)),
            (principal): Caller => ({ _tag: "Key", principal })
          )
  })

const inputOf = (request: Request, url: URL, method: Routes.Method, limit: number) =>
  method === "GET" ? Effect.succeed(Object.fromEntries(url.searchParams)) : Body.readJson(request, limit)

// A response is read once, so each request gets its own (never a shared constant).
const readiness: Effect.Effect<Response, never, Admin> = Effect.flatMap(Admin, (admin) =>
  admin.globalBudgetInfo(master)
).pipe(
  Effect.map(() => ErrorResponse.json(200, { status: "healthy", db: "connected" })),
  Effect.catchAllCause((cause) =>
    Effect.map(
      Effect.logWarning("teambudget: the store is not ready").pipe(
        Effect.annotateLogs({
          error: Option.getOrElse(
            Option.map(Cause.failureOption(cause), (e) => e._tag),
            () => "defect"
          )
        })
      ),
      () => ErrorResponse.json(503, { status: "unhealthy", db: "unreachable" })
    )
  )
)

const unexpected = (cause: Cause.Cause<TeamBudgetError>): Effect.Effect<Response> =>
  Option.isSome(Cause.failureOption(cause))
    ? Effect.succeed(ErrorResponse.fromCause(cause))
    : Effect.as(
        Effect.logError("teambudget: a management request failed unexpectedly", cause),
        ErrorResponse.internal()
      )

/**
 * The API as an Effect per request; it never fails: every error is a response with
 * the body of SPEC 9.
 *
 * @example
 * const api = ManagementApi.handler({ masterKey: Redacted.make("sk-master") })
 * const response = yield* api(new Request("http://localhost/team/info?team_id=research", { headers }))
 * @since 0.1.0
 */
export const handler = (options: ManagementApiOptions) => {
  const isMaster = Bearer.masterKeyCheck(options.masterKey)
  const limit = options.maxBodyBytes ?? Body.DEFAULT_LIMIT
  return (request: Request, basePath = ""): Effect.Effect<Response, never, ManagementServices> =>
    Effect.gen(function* () {
      const url = new URL(request.url)
      const path = relativePath(url.pathname, basePath)
      if (Option.isNone(path)) return ErrorResponse.routeNotFound()
      const method = request.method.toUpperCase()
      if (
        path.value === "/health" ||
        path.value === "/health/liveliness" ||
        path.value === "/health/liveness"
      ) {
        return method === "GET"
          ? ErrorResponse.json(200, { status: "healthy" })
          : ErrorResponse.methodNotAllowed("GET")
      }
      if (path.value === "/health/readiness") {
        return method === "GET" ? yield* readiness : ErrorResponse.methodNotAllowed("GET")
      }
      const candidates = Routes.routes.filter((route) => route.path === path.value)
      const [first] = candidates
      if (first === undefined) return ErrorResponse.routeNotFound()
      const route = candidates.find((candidate) => candidate.method === method)
      if (route === undefined || !isMethod(method)) return ErrorResponse.methodNotAllowed(first.method)
      const caller = yield* authenticate(request, isMaster)
      const input = yield* inputOf(request, url, route.method, limit)
      const body = yield* route.handle(caller, input)
      return ErrorResponse.json(200, body)
    }).pipe(Effect.catchAllCause(unexpected), Effect.withSpan("ManagementApi.handle"))
}

/**
 * The API as a Promise function over the services in the current context.
 *
 * @since 0.1.0
 */
export const make = (
  options: ManagementApiOptions
): Effect.Effect<ManagementHandler, never, ManagementServices> => {
  const handle = handler(options)
  return Effect.map(
    Effect.runtime<ManagementServices>(),
    (runtime): ManagementHandler =>
      (request, basePath) =>
        Runtime.runPromise(runtime, handle(request, basePath))
  )
}

/**
 * The API as a Promise function, run by a runtime that has its services.
 *
 * @example
 * const runtime = ManagedRuntime.make(services)
 * const api = ManagementApi.toWebHandler(runtime, { masterKey: Redacted.make(process.env.MASTER_KEY ?? "") })
 * const response = await api(request)
 * @since 0.1.0
 */
export const toWebHandler = (
  runner: Runner<ManagementServices>,
  options: ManagementApiOptions
): ManagementHandler => {
  const handle = handler(options)
  const run = runPromise(runner)
  return (request, basePath) => run(handle(request, basePath))
}

/**
 * The API over a layer of its services, with `dispose` to release them.
 *
 * @since 0.1.0
 */
export const toWebHandlerLayer = <E>(
  layer: Layer.Layer<ManagementServices, E>,
  options: ManagementApiOptions
): { readonly handler: ManagementHandler; readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(layer)
  return { handler: toWebHandler(runtime, options), dispose: () => runtime.dispose() }
}
