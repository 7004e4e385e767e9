import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { main as effectExample } from "../examples/readme/effect.js"
import { main as eventsExample } from "../examples/readme/events.js"
import { main as promiseExample } from "../examples/readme/promise.js"

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
const source = (name: string) => readFileSync(new URL(`../examples/readme/${name}`, import.meta.url), "utf8")

describe("README examples", () => {
  it.each(["effect.ts", "promise.ts", "events.ts"])("README shows examples/readme/%s verbatim", (name) => {
    expect(readme).toContain("```ts\n" + source(name) + "```")
  })

  it("the Effect example charges exactly what the usage costs", async () => {
    // gpt-4o-mini from the offline catalogue: 25 × $0.15/M + 180 × $0.60/M.
    expect(await effectExample()).toBe(0.00011175)
  })

  it("the Promise example is refused by the team budget on its second call", async () => {
    expect(await promiseExample()).toBe("refused by team")
  })

  it("the events example sees 50 % of the team budget, by callback and by signed webhook", async () => {
    const { seen, webhook } = await eventsExample()
    expect(seen).toEqual(["BudgetThresholdReached team:research"])
    expect(webhook).toEqual([
      expect.objectContaining({
        type: "BudgetThresholdReached",
        percent: 50,
        scope: { kind: "team", id: "research" }
      })
    ])
  })
})
