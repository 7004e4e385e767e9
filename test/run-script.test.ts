/**
 * `scripts/run.mjs`, which runs `npm start` and `npm run bench`: the entry gets its
 * arguments, and every bundled module keeps its own `import.meta.url`, so a module's
 * "am I the main script" check and its relative paths work as they do from source.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { describe, expect, it } from "@effect/vitest"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const ENTRY = join(ROOT, "test", "fixtures", "run", "entry.ts")

const launch = (...args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [join(ROOT, "scripts", "run.mjs"), ...args], { cwd: ROOT, encoding: "utf8" })

describe("scripts/run.mjs", () => {
  it("runs the entry with its arguments, each module with its own import.meta.url", () => {
    const run = launch("test/fixtures/run/entry.ts", "--config", "x.yaml")
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({
      entryUrl: pathToFileURL(ENTRY).href,
      nestedUrl: pathToFileURL(join(ROOT, "test", "fixtures", "run", "nested", "where.ts")).href,
      argv: [ENTRY, "--config", "x.yaml"]
    })
  })

  it("says how to use it when no entry is given, and fails on an entry that does not exist", () => {
    const bare = launch()
    expect(bare.status).toBe(2)
    expect(bare.stderr).toContain("usage: node scripts/run.mjs ENTRY.ts")
    const missing = launch("test/fixtures/run/absent.ts")
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toContain("absent.ts")
  })

  it("a new bundle removes the entry's bundles left unused for a day, and nothing else", () => {
    const cache = join(ROOT, "node_modules", ".cache", "teambudget")
    mkdirSync(cache, { recursive: true })
    const dir = mkdtempSync(join(tmpdir(), "tb-run-"))
    const name = `run-cleanup-${process.pid}-${Date.now()}`
    const stale = join(cache, `${name}-stale.mjs`)
    const recent = join(cache, `${name}-recent.mjs`)
    const otherEntry = join(cache, `other-${name}-stale.mjs`)
    try {
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000)
      for (const path of [stale, recent, otherEntry]) writeFileSync(path, "export {}\n")
      utimesSync(stale, twoDaysAgo, twoDaysAgo)
      utimesSync(otherEntry, twoDaysAgo, twoDaysAgo)
      // New content, so the launcher writes a new bundle of this entry.
      const entry = join(dir, `${name}.ts`)
      writeFileSync(entry, `console.log(${JSON.stringify(name)})\n`)
      const run = launch(entry)
      expect(run.stdout.trim()).toBe(name)
      expect(existsSync(stale)).toBe(false)
      expect(existsSync(recent)).toBe(true)
      expect(existsSync(otherEntry)).toBe(true)
    } finally {
      // The markers, and the bundle this run wrote.
      for (const file of readdirSync(cache))
        if (file.startsWith(`${name}-`) || file.startsWith(`other-${name}-`))
          rmSync(join(cache, file), { force: true })
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
