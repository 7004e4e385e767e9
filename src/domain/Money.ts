/**
 * Exact money: integer nano-dollars (1e-9 USD) in a `bigint`.
 *
 * Sums never drift: one million charges of $0.0000001 add up to exactly $0.1.
 * The HTTP API speaks USD as JSON numbers; {@link Usd} converts at that boundary.
 *
 * @since 0.1.0
 */
import { Brand, Schema } from "effect"
import { fromScaled, toScaled } from "./Decimal.js"

/** @since 0.1.0 */
export type Money = bigint & Brand.Brand<"Money">

/** Nano-dollars per dollar. @since 0.1.0 */
export const NANOS_PER_USD = 1_000_000_000n

/** The largest amount the stores accept: one billion dollars. @since 0.1.0 */
export const MAX_USD = 1_000_000_000

/** @since 0.1.0 */
export const make = Brand.nominal<Money>()

/** @since 0.1.0 */
export const zero: Money = make(0n)

/** @since 0.1.0 */
export const add = (a: Money, b: Money): Money => make(a + b)

/** Difference, floored at zero. @since 0.1.0 */
export const minus = (a: Money, b: Money): Money => make(a > b ? a - b : 0n)

/** @since 0.1.0 */
export const min = (a: Money, b: Money): Money => (a < b ? a : b)

/** @since 0.1.0 */
export const max = (a: Money, b: Money): Money => (a > b ? a : b)

/**
 * Converts a USD amount to money, rounding to the nearest nano-dollar.
 *
 * @example
 * Money.fromUsd(0.1) // 100_000_000n
 * @since 0.1.0
 */
export const fromUsd = (usd: number): Money | undefined => {
  const nanos = toScaled(usd, 9)
  return nanos === undefined ? undefined : make(nanos)
}

/** @since 0.1.0 */
export const toUsd = (money: Money): number => fromScaled(money, 9)

/** Money as nano-dollars, for stores (a non-negative bigint). @since 0.1.0 */
export const Nanos: Schema.Schema<Money, bigint> = Schema.BigIntFromSelf.pipe(
  Schema.nonNegativeBigInt(),
  Schema.fromBrand(make),
  Schema.annotations({ identifier: "Money" })
)

/** Money as a string of nano-dollars, as PostgreSQL returns `int8`. @since 0.1.0 */
export const NanosFromString: Schema.Schema<Money, string> = Schema.compose(Schema.BigInt, Nanos)

/**
 * Money as a USD JSON number: finite, not negative, at most {@link MAX_USD}.
 *
 * @example
 * Schema.decodeUnknownSync(Money.Usd)(12.5) // 12_500_000_000n
 * @since 0.1.0
 */
export const Usd: Schema.Schema<Money, number> = Schema.transform(
  Schema.Number.pipe(
    Schema.finite({ message: () => "must be a finite number of US dollars" }),
    Schema.nonNegative({ message: () => "must not be negative" }),
    Schema.lessThanOrEqualTo(MAX_USD, { message: () => `must be at most ${MAX_USD} USD` })
  ),
  Nanos,
  {
    strict: true,
    decode: (usd) => fromUsd(usd) ?? 0n,
    encode: (nanos) => fromScaled(nanos, 9)
  }
).pipe(Schema.annotations({ identifier: "Usd" }))

/** Human form, for messages: `$12.50`, `$0.000000100`. @since 0.1.0 */
export const format = (money: Money): string => {
  const usd = toUsd(money)
  return usd >= 0.01 || usd === 0 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(9)}`
}
