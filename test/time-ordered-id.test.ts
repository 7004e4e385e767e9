/**
 * Generated request and hold ids: version 7 UUIDs, ordered by the millisecond they were
 * made in and unique within one.
 */
import { describe, expect, it } from "@effect/vitest"
import { timeOrderedId } from "../src/services/internal/timeOrderedId.js"

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("timeOrderedId", () => {
  it("is a version 7 UUID whose first 48 bits are the millisecond", () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 123)
    const id = timeOrderedId(now)
    expect(id).toMatch(UUID_V7)
    expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(now)
  })

  it("sorts by time across milliseconds and never repeats within one", () => {
    const start = Date.UTC(2026, 0, 1)
    const ids = Array.from({ length: 2000 }, (_, i) => timeOrderedId(start + Math.floor(i / 100)))
    expect(new Set(ids).size).toBe(ids.length)
    for (let i = 100; i < ids.length; i += 100) {
      expect((ids[i - 1] ?? "") < (ids[i] ?? "")).toBe(true)
    }
  })

  it("keeps its shape for a clock at zero or out of range", () => {
    expect(timeOrderedId(0)).toMatch(/^00000000-0000-7/)
    expect(timeOrderedId(-5)).toMatch(/^00000000-0000-7/)
    expect(timeOrderedId(2 ** 60)).toMatch(/^ffffffff-ffff-7/)
  })
})
