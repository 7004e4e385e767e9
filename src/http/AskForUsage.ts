/**
 * The body of a streamed request as the upstream gets it: the client's own bytes,
 * asking for the usage chunk (`stream_options.include_usage`) that settles it.
 *
 * The key is written into the client's text rather than the body serialised again:
 * the upstream gets the bytes the client sent (its number formats, escapes, key order
 * and spacing), and a long conversation is not turned back into text on every request.
 * Only a body whose `stream_options` is there but does not ask for usage is
 * serialised again, with `include_usage` added to its other options.
 *
 * @since 0.1.0
 */
import { Predicate } from "effect"

const USAGE_OPTION = '"stream_options":{"include_usage":true}'

/** Whether `code` is JSON whitespace (space, tab, line feed, carriage return). */
const isSpace = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d

/**
 * `text` (the JSON of `body`, an object) asking for usage; `text` itself when it
 * already does.
 *
 * @example
 * askForUsage('{"model":"gpt-4o","stream":true}', { model: "gpt-4o", stream: true })
 * // '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}'
 * @since 0.1.0
 */
export const askForUsage = (text: string, body: Record<string, unknown>): string => {
  if (!Object.hasOwn(body, "stream_options")) {
    let end = text.length - 1
    while (end >= 0 && isSpace(text.charCodeAt(end))) end--
    // A JSON object's text ends with its closing brace; anything else is serialised below.
    if (end > 0 && text.charCodeAt(end) === 0x7d) {
      const separator = Object.keys(body).length === 0 ? "" : ","
      return `${text.slice(0, end)}${separator}${USAGE_OPTION}${text.slice(end)}`
    }
  }
  const options = Predicate.isRecord(body.stream_options) ? body.stream_options : {}
  if (options.include_usage === true) return text
  return JSON.stringify({ ...body, stream_options: { ...options, include_usage: true } })
}
