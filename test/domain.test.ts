import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { BudgetDuration, BudgetWindow, Money } from "../src/index.js"

const decodeUsd = Schema.decodeUnknownEither(Money.Usd)
const encodeUsd = Schema.encodeSync(Money.Usd)
const decodeDuration = Schema.decodeUnknownEither(BudgetDuration.FromString)
const encodeDuration = Schema.encodeSync(BudgetDuration.FromString)

describe("Money", () => {
  it("one million charges of $0.0000001 sum to exactly $0.1", () => {
    const charge = Money.fromUsd(0.0000001)
    expect(charge).toBe(100n)
    let total = Money.zero
    for (let i = 0; i < 1_000_000; i++) total = Money.add(total, charge ?? Money.zero)
    expect(total).toBe(Money.fromUsd(0.1))
    expect(total).toBe(100_000_000n)
    expect(Money.toUsd(total)).toBe(0.1)
  })

  it("decodes USD numbers to nano-dollars by their decimal spelling", () => {
    expect(decodeUsd(12.5)).toEqual(Either.right(12_500_000_000n))
    expect(decodeUsd(0.1)).toEqual(Either.right(100_000_000n))
    expect(decodeUsd(1e-9)).toEqual(Either.right(1n))
    expect(decodeUsd(0)).toEqual(Either.right(0n))
    expect(decodeUsd(0.1 + 0.2)).toEqual(Either.right(300_000_000n))
    expect(decodeUsd(Money.MAX_USD)).toEqual(Either.right(BigInt(Money.MAX_USD) * Money.NANOS_PER_USD))
    expect(encodeUsd(Money.make(12_500_000_000n))).toBe(12.5)
    expect(encodeUsd(Money.make(100n))).toBe(0.0000001)
  })

  it("round trips every amount of up to 15 significant digits exactly", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), (nanos) => {
        const money = Money.make(nanos)
        expect(decodeUsd(encodeUsd(money))).toEqual(Either.right(money))
      })
    )
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000_000_000 }), (cents) => {
        const usd = cents / 100
        const decoded = decodeUsd(usd)
        expect(decoded).toEqual(Either.right(BigInt(cents) * 10_000_000n))
        expect(Either.map(decoded, (money) => encodeUsd(Money.make(money)))).toEqual(Either.right(usd))
      })
    )
  })

  it("refuses negative, NaN, infinite, too large and non-number amounts", () => {
    for (const bad of [
      -1,
      -0.000001,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1e9 + 1,
      "5",
      null
    ]) {
      expect(Either.isLeft(decodeUsd(bad))).toBe(true)
    }
    const negative = decodeUsd(-1)
    expect(Either.isLeft(negative) && negative.left.message).toContain("must not be negative")
    const nan = decodeUsd(Number.NaN)
    expect(Either.isLeft(nan) && nan.left.message).toContain("must be a finite number of US dollars")
  })
})

describe("BudgetDuration", () => {
  it("accepts seconds, minutes, hours, days and calendar months", () => {
    const cases: ReadonlyArray<readonly [string, BudgetDuration.BudgetDuration]> = [
      ["30s", { count: 30, unit: "s" }],
      ["10m", { count: 10, unit: "m" }],
      ["1h", { count: 1, unit: "h" }],
      ["7d", { count: 7, unit: "d" }],
      ["1mo", { count: 1, unit: "mo" }],
      ["12mo", { count: 12, unit: "mo" }]
    ]
    for (const [text, parsed] of cases) {
      expect(decodeDuration(text)).toEqual(Either.right(parsed))
      expect(encodeDuration(parsed)).toBe(text)
    }
    expect(BudgetDuration.fixedMillis({ count: 2, unit: "h" })).toBe(7_200_000)
    expect(BudgetDuration.fixedMillis({ count: 1, unit: "mo" })).toBeUndefined()
  })

  it("refuses anything else with a readable message", () => {
    for (const bad of ["banana", "0d", "1w", "1.5h", "", "1 h", "01d", "-1d", "1D", "1month"]) {
      const result = decodeDuration(bad)
      expect(Either.isLeft(result)).toBe(true)
      expect(Either.isLeft(result) && result.left.message).toContain(BudgetDuration.expectedMessage(bad))
    }
    const banana = decodeDuration("banana")
    expect(Either.isLeft(banana) && banana.left.message).toContain(
      'expected a duration such as "30s", "10m", "1h", "7d" or "1mo", got "banana"'
    )
  })
})

describe("BudgetWindow", () => {
  const duration = fc.record({
    count: fc.integer({ min: 1, max: 48 }),
    unit: fc.constantFrom<BudgetDuration.Unit>("s", "m", "h", "d", "mo")
  })
  const anchor = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) })
  const offset = fc.integer({ min: 0, max: 10 * 366 * 86_400_000 })

  it("the window of now contains now", () => {
    fc.assert(
      fc.property(anchor, duration, offset, (a, d, o) => {
        const window = BudgetWindow.containing(a, d, a + o)
        expect(window.start).toBeLessThanOrEqual(a + o)
        expect(window.end).toBeGreaterThan(a + o)
      })
    )
  })

  it("consecutive windows tile without gaps or overlaps, on the anchor's grid", () => {
    fc.assert(
      fc.property(anchor, duration, offset, (a, d, o) => {
        const window = BudgetWindow.containing(a, d, a + o)
        const next = BudgetWindow.containing(a, d, window.end)
        expect(next.start).toBe(window.end)
        expect(next.end).toBeGreaterThan(next.start)
        expect(BudgetWindow.containing(a, d, window.end - 1).start).toBe(window.start)
        expect(BudgetWindow.containing(a, d, a).start).toBe(a)
      })
    )
  })

  it("calendar months clamp to the month's end and come back: Jan 31 → Feb 28/29 → Mar 31", () => {
    const month = { count: 1, unit: "mo" } as const
    for (const [year, february] of [
      [2025, 28],
      [2024, 29],
      [2100, 28],
      [2000, 29]
    ] as const) {
      const jan31 = Date.UTC(year, 0, 31, 9, 30)
      expect(BudgetWindow.addMonths(jan31, 1)).toBe(Date.UTC(year, 1, february, 9, 30))
      expect(BudgetWindow.boundary(jan31, month, 2)).toBe(Date.UTC(year, 2, 31, 9, 30))
      expect(BudgetWindow.containing(jan31, month, Date.UTC(year, 1, february, 9, 30) - 1)).toEqual({
        start: jan31,
        end: Date.UTC(year, 1, february, 9, 30)
      })
      expect(BudgetWindow.containing(jan31, month, Date.UTC(year, 2, 1)).start).toBe(
        Date.UTC(year, 1, february, 9, 30)
      )
    }
  })
})
