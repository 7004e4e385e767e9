/**
 * `teambudget migrate`: applies the migrations once, reports an up-to-date schema
 * afterwards, fails with a clear message and a non-zero exit code, and never prints a
 * password from the database URL.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { run } from "../src/cli/migrate.js"
import { migrations } from "../src/store/sql/Migrations.js"
import { describePg, pgUrl, useDatabase } from "./support/postgres.js"

// Every migration, in the order the migrator applies them.
const appliedAll = Object.keys(migrations)
  .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))
  .map((id) => `Applied migration ${id}\n`)
  .join("")

const dir = mkdtempSync(join(tmpdir(), "teambudget-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("teambudget migrate", () => {
  it.effect("applies the migrations once, then finds the schema up to date", () =>
    Effect.gen(function* () {
      const url = `sqlite:${join(dir, "new", "budget.db")}`
      const first = yield* run(["migrate", "--database-url", url])
      expect(first).toEqual({ code: 0, stdout: appliedAll, stderr: "" })
      const second = yield* run(["migrate", `--database-url=${url}`])
      expect(second).toEqual({ code: 0, stdout: "The schema is up to date.\n", stderr: "" })
    })
  )

  it.effect("reads DATABASE_URL when no URL is given", () =>
    Effect.gen(function* () {
      const url = `sqlite:${join(dir, "env.db")}`
      const outcome = yield* run(["migrate"]).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", url]])))
      )
      expect(outcome.code).toBe(0)
      expect(outcome.stdout).toContain("1_initial")
    })
  )

  it.effect("an unreachable database exits 1 with a clear message that hides the password", () =>
    Effect.gen(function* () {
      const outcome = yield* run([
        "migrate",
        "--database-url",
        "postgres://admin:s3cr3t-pw@127.0.0.1:1/budget"
      ])
      expect(outcome.code).toBe(1)
      expect(outcome.stderr).toContain("teambudget migrate: The budget store is unavailable (connect)")
      expect(outcome.stderr + outcome.stdout).not.toContain("s3cr3t-pw")
    })
  )

  it.effect("usage errors exit 2", () =>
    Effect.gen(function* () {
      expect((yield* run([])).code).toBe(2)
      expect((yield* run(["frobnicate"])).code).toBe(2)
      expect((yield* run(["migrate", "--database-url"])).code).toBe(2)
      const scheme = yield* run(["migrate", "--database-url", "mysql://root:pw@db/x"])
      expect(scheme.code).toBe(2)
      expect(scheme.stderr).not.toContain("pw@")
      expect((yield* run(["--help"])).code).toBe(0)
    })
  )

  it("runs as a program and exits with the code", () => {
    const script = join(import.meta.dirname, "..", "src", "cli", "migrate.ts")
    const ok = spawnSync(
      process.execPath,
      ["--import", "tsx", script, "migrate", "--database-url", `sqlite:${join(dir, "bin.db")}`],
      {
        encoding: "utf8"
      }
    )
    expect(ok.status).toBe(0)
    expect(ok.stdout).toBe(appliedAll)
    const bad = spawnSync(
      process.execPath,
      ["--import", "tsx", script, "migrate", "--database-url", "postgres://u:hidden@127.0.0.1:1/x"],
      {
        encoding: "utf8"
      }
    )
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain("unavailable")
    expect(bad.stderr).not.toContain("hidden")
  }, 30_000)
})

describePg("teambudget migrate on PostgreSQL", () => {
  const database = useDatabase()
  it.effect("migrates a PostgreSQL database, then finds it up to date", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name)
      expect((yield* run(["migrate", "--database-url", url])).stdout).toBe(appliedAll)
      expect((yield* run(["migrate", "--database-url", url])).stdout).toBe("The schema is up to date.\n")
    })
  )
})
