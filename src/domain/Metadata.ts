/**
 * Free-form metadata attached to teams and keys: a JSON object.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * How deep metadata may nest. Writing and reading JSON recurses once per level, so a
 * value nested thousands deep could be accepted and then fail every read of its row.
 *
 * @since 0.1.0
 */
export const MAX_DEPTH = 32

/** The nesting depth of a JSON value, counted without recursion (the value may be deep). */
const depthOf = (value: unknown): number => {
  let deepest = 0
  const pending: Array<readonly [unknown, number]> = [[value, 0]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next
    if (typeof item !== "object" || item === null) continue
    deepest = Math.max(deepest, depth + 1)
    if (deepest > MAX_DEPTH) return deepest
    for (const child of Object.values(item)) pending.push([child, depth + 1])
  }
  return deepest
}

/**
 * A JSON object of any keys, nested at most {@link MAX_DEPTH} levels.
 *
 * @example
 * Schema.decodeUnknownSync(Metadata)({ owner: "research", tags: ["a"] })
 * @since 0.1.0
 */
export const Metadata = Schema.Record({ key: Schema.String, value: Schema.Unknown }).pipe(
  Schema.filter((value) => depthOf(value) <= MAX_DEPTH || `must not nest deeper than ${MAX_DEPTH} levels`)
)
/** @since 0.1.0 */
export type Metadata = typeof Metadata.Type
