/**
 * The README's curl walk-through (`docs/walkthrough.md`), run as written: `npm start`
 * with no configuration at all in an empty working directory, then every `sh` block
 * of the page, in order, in one bash session with the printed `MASTER_KEY` exported.
 * Only the port differs (`PORT=0` picks a free one).
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Proxy from "../support/proxyProcess.js"

const PAGE = join(Proxy.ROOT, "docs", "walkthrough.md")

/** The page's `sh` blocks, except those that install or start the proxy. */
const commandBlocks = (markdown: string): ReadonlyArray<string> =>
  [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)]
    .map((match) => match[1] ?? "")
    .filter((block) => !/^npm /m.test(block))

const runBash = (
  script: string,
  env: NodeJS.ProcessEnv,
  cwd: string
): Promise<{ code: number; stdout: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { env, cwd, stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.once("error", reject)
    child.once("exit", (code) => resolve({ code: code ?? -1, stdout }))
  })

const statusLines = (output: string): ReadonlyArray<string> =>
  output.split(/\r?\n/).filter((line) => line.startsWith("HTTP/1.1 "))

describe("the README walk-through against `npm start` with no configuration", () => {
  let proxy: Proxy.ProxyProcess
  let outputs: ReadonlyArray<string> = []

  beforeAll(async () => {
    proxy = await Proxy.start()
    const masterKey = proxy.printedMasterKey
    if (masterKey === undefined) throw new Error(`no master key was printed:\n${proxy.output.join("\n")}`)
    const port = new URL(proxy.url).port
    const blocks = commandBlocks(readFileSync(PAGE, "utf8"))
    const script = blocks
      .map(
        (block, i) => `printf '\\n@@@ ${i}\\n'\n${block.replaceAll("localhost:4000", `localhost:${port}`)}`
      )
      .join("\n")
    const { code, stdout } = await runBash(script, { ...process.env, MASTER_KEY: masterKey }, proxy.dir)
    expect(code).toBe(0)
    outputs = stdout.split(/^@@@ \d+$/m).slice(1)
    expect(outputs).toHaveLength(blocks.length)
  }, 60_000)

  afterAll(async () => {
    if (proxy === undefined) return
    const code = await proxy.stop("SIGTERM")
    proxy.kill()
    Proxy.removeWorkDir(proxy.dir)
    expect(code).toBe(0)
  })

  const step = (n: number): string => outputs[n - 1] ?? ""

  it("has the nine steps the checks below expect", () => {
    expect(outputs).toHaveLength(9)
  })

  it("starts offline with the embedded store under ./.teambudget/ and prints the master key once", () => {
    expect(existsSync(join(proxy.dir, ".teambudget", "teambudget.db"))).toBe(true)
    const shown = proxy.output.filter(
      (line) => proxy.printedMasterKey !== undefined && line.includes(proxy.printedMasterKey)
    )
    expect(shown).toEqual([`export MASTER_KEY=${proxy.printedMasterKey}`])
  })

  it("1-3: creates the team, adds alice, makes her key", () => {
    expect(JSON.parse(step(1))).toMatchObject({ team_id: "research", max_budget: 10, spend: 0 })
    expect(JSON.parse(step(2))).toMatchObject({
      updated_team_memberships: [{ team_id: "research", user_id: "alice", litellm_budget_table: null }]
    })
    expect(step(3).trim()).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/)
  })

  it("4: the call is answered, with the budget left in a header", () => {
    expect(statusLines(step(4))).toEqual(["HTTP/1.1 200 OK"])
    expect(step(4)).toMatch(/x-budget-remaining-usd: 9\.99/)
    expect(step(4)).toContain('"object":"chat.completion"')
  })

  it("5-6: a member budget is set, and the next call is refused with 402 naming the member", () => {
    expect(JSON.parse(step(5))).toMatchObject({
      user_id: "alice",
      litellm_budget_table: { max_budget: 0.0001 }
    })
    expect(statusLines(step(6))).toEqual(["HTTP/1.1 402 Payment Required"])
    expect(step(6)).toContain('"code":"membership_budget_exceeded"')
  })

  it("7: clearing it with null shows litellm_budget_table null, and alice's key works again", () => {
    expect(step(7)).toContain('"litellm_budget_table": null')
    expect(statusLines(step(7))).toEqual(["HTTP/1.1 200 OK"])
  })

  it("8: a pool shrunk below its spend refuses with 402 naming the team", () => {
    expect(statusLines(step(8))).toEqual(["HTTP/1.1 402 Payment Required"])
    expect(step(8)).toContain('"code":"team_budget_exceeded"')
    expect(step(8)).toContain("research")
  })

  it("9: two answered calls are two spend log rows, and the team carries their cost", () => {
    const [rows, spend] = step(9).trim().split("\n")
    expect(rows).toBe("2")
    expect(Number(spend)).toBeGreaterThan(0)
    expect(Number(spend)).toBeLessThan(0.0002)
  })
})
