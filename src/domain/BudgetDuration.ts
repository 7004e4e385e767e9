/**
 * The length of a budget window: `"30s"`, `"10m"`, `"1h"`, `"7d"` or `"1mo"`
 * (calendar months).
 *
 * @since 0.1.0
 */
import { ParseResult, Schema } from "effect"

/** @since 0.1.0 */
export type Unit = "s" | "m" | "h" | "d" | "mo"

/**
 * A parsed duration. Months are kept apart from fixed lengths because a month is
 * not a fixed number of milliseconds.
 *
 * @since 0.1.0
 */
export interface BudgetDuration {
  readonly count: number
  readonly unit: Unit
}

const PATTERN = /^([1-9]\d{0,5})(s|m|h|d|mo)$/

const MILLIS: Record<Exclude<Unit, "mo">, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

/** The message every refusal of a duration carries. @since 0.1.0 */
export const expectedMessage = (input: string): string =>
  `expected a duration such as "30s", "10m", "1h", "7d" or "1mo", got ${JSON.stringify(input)}`

/**
 * Parses a duration, or returns `undefined`.
 *
 * @example
 * BudgetDuration.parse("1mo") // { count: 1, unit: "mo" }
 * @since 0.1.0
 */
export const parse = (input: string): BudgetDuration | undefined => {
  const match = PATTERN.exec(input)
  if (match === null) return undefined
  const [, count, unit] = match
  switch (unit) {
    case "s":
    case "m":
    case "h":
    case "d":
    case "mo":
      return { count: Number(count), unit }
    default:
      return undefined
  }
}

/** @since 0.1.0 */
export const format = (duration: BudgetDuration): string => `${duration.count}${duration.unit}`

/** Fixed length in milliseconds, or `undefined` for calendar months. @since 0.1.0 */
export const fixedMillis = (duration: BudgetDuration): number | undefined =>
  duration.unit === "mo" ? undefined : duration.count * MILLIS[duration.unit]

/** The parsed form, for values already decoded. @since 0.1.0 */
export const Parsed: Schema.Schema<BudgetDuration> = Schema.Struct({
  count: Schema.Int.pipe(Schema.positive()),
  unit: Schema.Literal("s", "m", "h", "d", "mo")
})

/**
 * A duration from its string form, refusing anything else with a readable message.
 *
 * @example
 * Schema.decodeUnknownSync(BudgetDuration.FromString)("30d") // { count: 30, unit: "d" }
 * @since 0.1.0
 */
export const FromString: Schema.Schema<BudgetDuration, string> = Schema.transformOrFail(
  Schema.String,
  Parsed,
  {
    strict: true,
    decode: (input, _options, ast) => {
      const parsed = parse(input)
      return parsed === undefined
        ? ParseResult.fail(new ParseResult.Type(ast, input, expectedMessage(input)))
        : ParseResult.succeed(parsed)
    },
    encode: (duration) => ParseResult.succeed(format(duration))
  }
).pipe(Schema.annotations({ identifier: "BudgetDuration" }))
