/**
 * Hand-written decoding of the rows every ledger step reads (counters, holds):
 * cheaper than a schema on the hot path, with the same checks, and the first problem
 * of a row kept for its `CorruptRecord`.
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import * as BudgetDuration from "../../domain/BudgetDuration.js"
import * as Money from "../../domain/Money.js"

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** A column value as a bigint, whatever the driver returned, or `undefined`. @since 0.1.0 */
export const integer = (value: unknown): bigint | undefined => {
  if (typeof value === "bigint") return value
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : undefined
  return typeof value === "string" && /^-?\d+$/.test(value) ? BigInt(value) : undefined
}

/**
 * Reads the columns of one row, remembering the first one that is not what it must
 * be (and giving a placeholder for it, never used: the row is then refused).
 *
 * @since 0.1.0
 */
export class RowReader {
  problem: string | undefined
  constructor(readonly row: Record<string, unknown>) {}

  private fail<A>(detail: string, placeholder: A): A {
    this.problem ??= detail
    return placeholder
  }

  money(field: string): Money.Money {
    const value = integer(this.row[field])
    return value === undefined || value < 0n
      ? this.fail(`${field}: expected a non-negative integer`, Money.zero)
      : Money.make(value)
  }

  optionalMoney(field: string): Option.Option<Money.Money> {
    return this.row[field] === null ? Option.none() : Option.some(this.money(field))
  }

  millis(field: string): number {
    const value = integer(this.row[field])
    return value === undefined || value > MAX_SAFE || value < -MAX_SAFE
      ? this.fail(`${field}: expected a time in epoch milliseconds`, 0)
      : Number(value)
  }

  optionalMillis(field: string): Option.Option<number> {
    return this.row[field] === null ? Option.none() : Option.some(this.millis(field))
  }

  duration(field: string): Option.Option<BudgetDuration.BudgetDuration> {
    const value = this.row[field]
    if (value === null) return Option.none()
    const parsed = typeof value === "string" ? BudgetDuration.parse(value) : undefined
    return parsed === undefined
      ? this.fail(`${field}: ${BudgetDuration.expectedMessage(String(value))}`, Option.none())
      : Option.some(parsed)
  }

  stringArray(field: string): ReadonlyArray<string> {
    const value = this.row[field]
    if (typeof value === "string") {
      try {
        const parsed: unknown = JSON.parse(value)
        if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return parsed
      } catch {
        // reported below
      }
    }
    return this.fail(`${field}: expected a JSON array of strings`, [])
  }

  string(field: string): string {
    const value = this.row[field]
    return typeof value === "string" ? value : this.fail(`${field}: expected a string`, "")
  }
}
