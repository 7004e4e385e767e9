/**
 * Turns a schema decoding failure into the `InvalidRequest` a caller can act on: the
 * most specific field that failed, as a dotted path such as `messages.0.content`.
 *
 * @since 0.1.0
 */
import { ParseResult } from "effect"
import { InvalidRequest } from "../../domain/Errors.js"

/**
 * The deepest failing path wins: for a union, the member that matched furthest
 * explains the mistake better than a list of every member's complaint.
 *
 * @since 0.1.0
 */
export const fromParseError = (
  error: ParseResult.ParseError,
  prefix: ReadonlyArray<string> = []
): InvalidRequest => {
  let best: ParseResult.ArrayFormatterIssue | undefined
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    if (best === undefined || issue.path.length > best.path.length) best = issue
  }
  const path = [...prefix, ...(best?.path ?? []).map(String)]
  return new InvalidRequest({ path: path.join("."), detail: best?.message ?? "is invalid" })
}
