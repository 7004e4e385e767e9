/**
 * `scripts/run.mjs`, which runs `npm start` and `npm run bench`: the entry gets its
 * arguments, and every bundled module keeps its own `import.meta.url`, so a module's
 * "am I the main script" check and its relative paths work as they do from source.
 */
import { spawnSync } from "node:child_process"
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
})
