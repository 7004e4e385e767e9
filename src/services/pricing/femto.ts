/**
 * Schemas for per-token prices written as USD JSON numbers, decoded to exact
 * femto-dollars (1e-15 USD) per token.
 *
 * @since 0.1.0
 */
import { ParseResult, Schema, type SchemaAST } from "effect"
import { fromScaled, toScaled } from "../../domain/Decimal.js"

/**
 * Converts a USD amount to femto-dollars through its decimal spelling, so `1.5e-7`
 * is exactly 150_000_000. A positive price finer than 1e-15 USD would round to a free
 * model, so it is refused rather than silently dropped.
 */
const toFemto = (usd: number, scale: number, ast: SchemaAST.AST) => {
  const femto = toScaled(usd, scale)
  if (femto === undefined) return ParseResult.fail(new ParseResult.Type(ast, usd, "must be a finite number"))
  if (femto === 0n && usd > 0) {
    return ParseResult.fail(
      new ParseResult.Type(ast, usd, "is below the smallest price unit (1e-15 USD per token)")
    )
  }
  return ParseResult.succeed(femto)
}

const UsdAmount = Schema.Number.pipe(
  Schema.finite({ message: () => "must be a finite number of US dollars" }),
  Schema.nonNegative({ message: () => "must not be negative" })
)

const femtoSchema = (scale: number): Schema.Schema<bigint, number> =>
  Schema.transformOrFail(UsdAmount, Schema.BigIntFromSelf, {
    strict: true,
    decode: (usd, _options, ast) => toFemto(usd, scale, ast),
    encode: (femto) => ParseResult.succeed(fromScaled(femto, scale))
  })

/**
 * USD per token (as LiteLLM and the configuration write it) → femto-dollars per token.
 *
 * @example
 * Schema.decodeSync(FemtoFromUsdPerToken)(1.5e-7) // 150_000_000n
 * @since 0.1.0
 */
export const FemtoFromUsdPerToken: Schema.Schema<bigint, number> = femtoSchema(15)

/**
 * USD per million tokens (as the bundled catalogue writes it) → femto-dollars per token.
 *
 * @since 0.1.0
 */
export const FemtoFromUsdPerMillion: Schema.Schema<bigint, number> = femtoSchema(9)
