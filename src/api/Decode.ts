/**
 * Decoding management requests: unknown JSON in, a typed request or an
 * `InvalidRequest` naming the first bad field out. Unknown fields are refused, so a
 * misspelt field can never be silently ignored.
 *
 * @since 0.1.0
 */
import { Effect, ParseResult, Schema } from "effect"
import { InvalidRequest } from "../domain/Errors.js"

const options = { onExcessProperty: "error", errors: "first" } as const

/**
 * The `InvalidRequest` of a parse error: the path of its first issue joined by `.`
 * (`member.0.user_id`, `max_budget`; empty for the body itself) and a readable message.
 *
 * @since 0.1.0
 */
export const toInvalidRequest = (error: ParseResult.ParseError): InvalidRequest => {
  const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (first === undefined) return new InvalidRequest({ path: "", detail: "the request is invalid" })
  const path = first.path.map(String).join(".")
  const detail = first._tag === "Missing" ? "is required" : first.message
  return new InvalidRequest({ path, detail })
}

/**
 * A decoder for one request schema.
 *
 * @example
 * const decode = decodeRequest(TeamRequests.TeamNew)
 * const request = yield* decode({ team_alias: "research", max_budget: 1000 })
 * @since 0.1.0
 */
export const decodeRequest =
  <A, I, R>(schema: Schema.Schema<A, I, R>) =>
  (input: unknown): Effect.Effect<A, InvalidRequest, R> =>
    typeof input !== "object" || input === null || Array.isArray(input)
      ? Effect.fail(new InvalidRequest({ path: "", detail: "the request must be a JSON object" }))
      : Schema.decodeUnknown(schema, options)(input).pipe(Effect.mapError(toInvalidRequest))
