/**
 * Failures as HTTP responses with the OpenAI-style body of SPEC 9:
 * `{"error": {"message", "type", "code", "param"}}`.
 *
 * @since 0.1.0
 */
import { Cause, Option } from "effect"
import { type RateLimited, type TeamBudgetError, toHttpError } from "../domain/Errors.js"

/** The SPEC 9 error body. @since 0.1.0 */
export interface ErrorBody {
  readonly error: {
    readonly message: string
    readonly type: string
    readonly code: string
    readonly param: string | null
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" } as const

/** Extra headers of a response. @since 0.1.0 */
export type ExtraHeaders = Headers | ReadonlyArray<readonly [string, string]>

const headersOf = (extra: ExtraHeaders | undefined): Headers => {
  if (extra instanceof Headers) return new Headers(extra)
  const headers = new Headers()
  for (const [name, value] of extra ?? []) headers.set(name, value)
  return headers
}

/**
 * A JSON response.
 *
 * @since 0.1.0
 */
export const json = (status: number, body: unknown, headers?: ExtraHeaders): Response => {
  const merged = headersOf(headers)
  merged.set("content-type", JSON_HEADERS["content-type"])
  return new Response(JSON.stringify(body), { status, headers: merged })
}

const optionalHeader = (name: string, value: number | undefined): ReadonlyArray<readonly [string, string]> =>
  value === undefined ? [] : [[name, String(value)]]

/**
 * The headers of a 429: `Retry-After` in whole seconds, and the `x-ratelimit-*` limits
 * and what is left of them, for each kind that has a limit.
 *
 * @example
 * const headers = rateLimitedHeaders(refusal) // [["retry-after", "20"], ["x-ratelimit-limit-requests", "3"], ...]
 * @since 0.1.0
 */
export const rateLimitedHeaders = (error: RateLimited): ReadonlyArray<readonly [string, string]> => [
  ["retry-after", String(error.retryAfterSeconds)],
  ...optionalHeader("x-ratelimit-limit-requests", error.limitRequests),
  ...optionalHeader("x-ratelimit-remaining-requests", error.remainingRequests),
  ...optionalHeader("x-ratelimit-limit-tokens", error.limitTokens),
  ...optionalHeader("x-ratelimit-remaining-tokens", error.remainingTokens)
]

/**
 * The response of a typed error: its SPEC 9 status and body, and `Retry-After` for a
 * rate limit.
 *
 * @example
 * const response = fromError(new NotFound({ entity: "team", id: "t1" })) // 404
 * @since 0.1.0
 */
export const fromError = (error: TeamBudgetError, headers?: ExtraHeaders): Response => {
  const { status, body } = toHttpError(error)
  const merged = headersOf(headers)
  if (error._tag === "RateLimited")
    for (const [name, value] of rateLimitedHeaders(error)) merged.set(name, value)
  return json(status, body, merged)
}

/** An error that is not one of the SDK's: the status and body, no detail. @since 0.1.0 */
export const plain = (status: number, type: string, code: string, message: string): Response =>
  json(status, { error: { message, type, code, param: null } } satisfies ErrorBody)

/**
 * The response of an unexpected failure (a defect or an interruption): 500 with a
 * generic message. The cause is never shown, since nothing vouches for what it holds.
 *
 * @since 0.1.0
 */
export const internal = (): Response =>
  plain(500, "internal_error", "internal_error", "The request failed unexpectedly.")

/**
 * The response of a failed Effect: its typed error, else {@link internal}.
 *
 * @since 0.1.0
 */
export const fromCause = (cause: Cause.Cause<TeamBudgetError>): Response =>
  Option.match(Cause.failureOption(cause), { onNone: internal, onSome: (error) => fromError(error) })

/** No route has this path (404). The path is not echoed back. @since 0.1.0 */
export const routeNotFound = (): Response =>
  plain(404, "not_found_error", "route_not_found", "No route matches this path.")

/** The route exists under another method (405). @since 0.1.0 */
export const methodNotAllowed = (allowed: string): Response => {
  const response = plain(
    405,
    "invalid_request_error",
    "method_not_allowed",
    `This route accepts ${allowed} only.`
  )
  response.headers.set("allow", allowed)
  return response
}
