#!/usr/bin/env node
/**
 * `teambudget migrate [--database-url URL]`: brings the schema of a SQL store up to
 * date, so a deployment can migrate before it starts its instances.
 *
 * The URL comes from `--database-url`, else from `DATABASE_URL`, else it is the
 * embedded store at `.teambudget/teambudget.db`. It is never printed: it may hold a
 * password. Exits 0 when the schema is current, 1 when migrating failed, 2 on a usage
 * error.
 *
 * @since 0.1.0
 */
import { pathToFileURL } from "node:url"
import type { SqlClient } from "@effect/sql/SqlClient"
import { Cause, Config, Effect, Exit, type Layer, Option, Redacted } from "effect"
import type { StoreUnavailable } from "../domain/Errors.js"
import * as SqlStore from "../store/sql/SqlStore.js"

const USAGE = `Usage: teambudget migrate [--database-url URL]

Brings the database schema of the budget store up to date.

  --database-url URL   postgres://..., postgresql://... or sqlite:PATH
                       (default: $DATABASE_URL, else sqlite:${SqlStore.DEFAULT_SQLITE_FILE})
`

/** What a run printed and its exit code. @since 0.1.0 */
export interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

type Parsed =
  | { readonly _tag: "Migrate"; readonly url: Option.Option<string> }
  | { readonly _tag: "Usage"; readonly error: string }

const parse = (argv: ReadonlyArray<string>): Parsed => {
  const [command, ...rest] = argv
  if (command === undefined) return { _tag: "Usage", error: "No command given." }
  if (command === "--help" || command === "-h") return { _tag: "Usage", error: "" }
  if (command !== "migrate") return { _tag: "Usage", error: `Unknown command: ${command}` }
  let url = Option.none<string>()
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? ""
    if (arg === "--database-url") {
      const value = rest[i + 1]
      if (value === undefined) return { _tag: "Usage", error: "--database-url needs a value" }
      url = Option.some(value)
      i++
    } else if (arg.startsWith("--database-url=")) {
      url = Option.some(arg.slice("--database-url=".length))
    } else if (arg === "--help" || arg === "-h") {
      return { _tag: "Usage", error: "" }
    } else {
      return { _tag: "Usage", error: `Unknown option: ${arg}` }
    }
  }
  return { _tag: "Migrate", url }
}

const clientFor = (url: string): Layer.Layer<SqlClient, StoreUnavailable> | undefined => {
  if (/^postgres(ql)?:\/\//i.test(url))
    return SqlStore.pgClient({ url: Redacted.make(url), maxConnections: 1 })
  if (/^sqlite:/i.test(url)) {
    const path = url.slice("sqlite:".length)
    return SqlStore.sqliteClient({ filename: path === "" ? SqlStore.DEFAULT_SQLITE_FILE : path })
  }
  return undefined
}

/** Hides a password that a driver message might repeat. */
const scrub = (text: string, url: string): string => {
  const password = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]+)@/i.exec(url)?.[1]
  return password === undefined || password === "" ? text : text.split(password).join("***")
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  if (typeof failure !== "object" || failure === null) return String(failure)
  const message = failure instanceof Error ? failure.message : String(failure)
  const inner: unknown = "cause" in failure ? failure.cause : undefined
  return inner instanceof Error ? `${message} ${inner.message}` : message
}

/**
 * Runs the command line `argv` (without `node` and the script), reading
 * `DATABASE_URL` through Effect's `Config`.
 *
 * @example
 * import { Effect } from "effect"
 * import { run } from "teambudget/dist/cli/migrate.js"
 *
 * const outcome = await Effect.runPromise(run(["migrate", "--database-url", "sqlite:budget.db"]))
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<Outcome> =>
  Effect.gen(function* () {
    const parsed = parse(argv)
    if (parsed._tag === "Usage") {
      return parsed.error === ""
        ? { code: 0, stdout: USAGE, stderr: "" }
        : { code: 2, stdout: "", stderr: `${parsed.error}\n\n${USAGE}` }
    }
    const configured = yield* Config.option(Config.redacted("DATABASE_URL")).pipe(
      Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
    )
    const url = Option.getOrElse(
      Option.orElse(parsed.url, () => Option.map(configured, Redacted.value)),
      () => `sqlite:${SqlStore.DEFAULT_SQLITE_FILE}`
    )
    const client = clientFor(url)
    if (client === undefined) {
      const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? "(none)"
      return {
        code: 2,
        stdout: "",
        stderr: `teambudget migrate: the database URL scheme ${scheme} is not postgres:, postgresql: or sqlite:\n`
      }
    }
    const exit = yield* Effect.exit(Effect.provide(SqlStore.migrate, client))
    return Exit.match(exit, {
      onSuccess: (applied) => ({
        code: 0,
        stdout:
          applied.length === 0
            ? "The schema is up to date.\n"
            : applied.map(([id, name]) => `Applied migration ${id}_${name}\n`).join(""),
        stderr: ""
      }),
      onFailure: (cause) => ({
        code: 1,
        stdout: "",
        stderr: `teambudget migrate: ${scrub(describe(cause), url)}\n`
      })
    })
  })

const invokedDirectly = (): boolean => {
  const script = process.argv[1]
  return script !== undefined && import.meta.url === pathToFileURL(script).href
}

if (invokedDirectly()) {
  void Effect.runPromise(run(process.argv.slice(2))).then((outcome) => {
    process.stdout.write(outcome.stdout)
    process.stderr.write(outcome.stderr)
    process.exitCode = outcome.code
  })
}
