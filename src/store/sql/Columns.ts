/**
 * Column codecs shared by every SQL row schema. Drivers disagree on what an integer
 * column gives back (PostgreSQL `int8` is a string, SQLite with safe integers a
 * bigint, small ints a number), so each codec accepts all three and checks the value
 * the domain needs.
 *
 * @since 0.1.0
 */
import { DateTime, Option, ParseResult, Schema } from "effect"
import * as BudgetDuration from "../../domain/BudgetDuration.js"
import { Limits } from "../../domain/Limits.js"
import type * as LimitsModule from "../../domain/Limits.js"
import { Metadata } from "../../domain/Metadata.js"
import * as Money from "../../domain/Money.js"

const RawInteger = Schema.Union(Schema.Number, Schema.BigIntFromSelf, Schema.String)

const toBigInt = (raw: number | bigint | string): bigint | undefined => {
  if (typeof raw === "bigint") return raw
  if (typeof raw === "number") return Number.isSafeInteger(raw) ? BigInt(raw) : undefined
  return /^-?\d+$/.test(raw) ? BigInt(raw) : undefined
}

/** An integer column as a bigint, whatever the driver returned. @since 0.1.0 */
export const BigIntColumn: Schema.Schema<bigint, number | bigint | string> = Schema.transformOrFail(
  RawInteger,
  Schema.BigIntFromSelf,
  {
    strict: true,
    decode: (raw, _options, ast) => {
      const value = toBigInt(raw)
      return value === undefined
        ? ParseResult.fail(new ParseResult.Type(ast, raw, "expected an integer"))
        : ParseResult.succeed(value)
    },
    encode: (value) => ParseResult.succeed(value)
  }
)

/** An integer column as a safe JavaScript number. @since 0.1.0 */
export const IntColumn: Schema.Schema<number, number | bigint | string> = Schema.transformOrFail(
  RawInteger,
  Schema.Int,
  {
    strict: true,
    decode: (raw, _options, ast) => {
      const value = toBigInt(raw)
      return value === undefined ||
        value > BigInt(Number.MAX_SAFE_INTEGER) ||
        value < -BigInt(Number.MAX_SAFE_INTEGER)
        ? ParseResult.fail(new ParseResult.Type(ast, raw, "expected a safe integer"))
        : ParseResult.succeed(Number(value))
    },
    encode: (value) => ParseResult.succeed(value)
  }
)

/** A count column (rate limits, tokens): a non-negative safe integer. @since 0.1.0 */
export const CountColumn = IntColumn.pipe(Schema.compose(Schema.Int.pipe(Schema.nonNegative())))

/** Money in nano-dollars: a non-negative integer column. @since 0.1.0 */
export const MoneyColumn: Schema.Schema<Money.Money, number | bigint | string> = Schema.compose(
  BigIntColumn,
  Money.Nanos
)

/** Epoch milliseconds as a UTC date-time. @since 0.1.0 */
export const TimeColumn: Schema.Schema<DateTime.Utc, number | bigint | string> = Schema.transform(
  IntColumn,
  Schema.DateTimeUtcFromSelf,
  {
    strict: true,
    decode: (millis) => DateTime.unsafeMake(millis),
    encode: (time) => time.epochMillis
  }
)

/** A 0/1 flag (SQLite has no booleans; PostgreSQL stores a smallint). @since 0.1.0 */
export const FlagColumn: Schema.Schema<boolean, number | bigint | string | boolean> = Schema.transformOrFail(
  Schema.Union(RawInteger, Schema.Boolean),
  Schema.Boolean,
  {
    strict: true,
    decode: (raw, _options, ast) => {
      if (typeof raw === "boolean") return ParseResult.succeed(raw)
      const value = toBigInt(raw)
      return value === 0n || value === 1n
        ? ParseResult.succeed(value === 1n)
        : ParseResult.fail(new ParseResult.Type(ast, raw, "expected 0 or 1"))
    },
    encode: (value) => ParseResult.succeed(value ? 1 : 0)
  }
)

/** A list of model names stored as JSON text. @since 0.1.0 */
export const ModelsColumn = Schema.parseJson(Schema.Array(Schema.String))

/** Metadata stored as JSON text. @since 0.1.0 */
export const MetadataColumn = Schema.parseJson(Metadata)

/** A nullable column. @since 0.1.0 */
export const nullable = <A, I>(schema: Schema.Schema<A, I>) => Schema.OptionFromNullOr(schema)

/**
 * The six limit columns every capped entity has.
 *
 * @since 0.1.0
 */
export const limitFields = {
  max_budget: nullable(MoneyColumn),
  soft_budget: nullable(MoneyColumn),
  budget_duration: nullable(BudgetDuration.FromString),
  tpm_limit: nullable(CountColumn),
  rpm_limit: nullable(CountColumn),
  max_parallel_requests: nullable(CountColumn)
}

/** The decoded limit columns. @since 0.1.0 */
export interface LimitColumns {
  readonly max_budget: Option.Option<Money.Money>
  readonly soft_budget: Option.Option<Money.Money>
  readonly budget_duration: Option.Option<BudgetDuration.BudgetDuration>
  readonly tpm_limit: Option.Option<number>
  readonly rpm_limit: Option.Option<number>
  readonly max_parallel_requests: Option.Option<number>
}

/** @since 0.1.0 */
export const toLimits = (row: LimitColumns): LimitsModule.Limits =>
  new Limits(
    {
      maxBudget: row.max_budget,
      softBudget: row.soft_budget,
      budgetDuration: row.budget_duration,
      tpmLimit: row.tpm_limit,
      rpmLimit: row.rpm_limit,
      maxParallelRequests: row.max_parallel_requests
    },
    true
  )

/** The values of the limit columns, for inserts and updates. @since 0.1.0 */
export const limitValues = (limits: LimitsModule.Limits) => ({
  max_budget: Option.getOrNull(limits.maxBudget),
  soft_budget: Option.getOrNull(limits.softBudget),
  budget_duration: Option.getOrNull(Option.map(limits.budgetDuration, BudgetDuration.format)),
  tpm_limit: Option.getOrNull(limits.tpmLimit),
  rpm_limit: Option.getOrNull(limits.rpmLimit),
  max_parallel_requests: Option.getOrNull(limits.maxParallelRequests)
})

/** @since 0.1.0 */
export const flag = (value: boolean): number => (value ? 1 : 0)

/** @since 0.1.0 */
export const json = (value: unknown): string => JSON.stringify(value)
