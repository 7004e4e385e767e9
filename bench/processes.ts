/**
 * Child processes and PostgreSQL set-up for the benchmarks that run the proxy as
 * users do: the fake provider and `examples/proxy/main.ts` in processes of their
 * own, a fresh database per run on the local server.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted } from "effect"
import { reachable } from "../test/support/reachable.js"

export const ROOT = fileURLToPath(new URL("..", import.meta.url))

/**
 * How every benchmark child process runs its TypeScript entry: bundled, as `npm start`
 * runs the proxy (`scripts/run.mjs` says why), so a child costs what a build would.
 */
export const launch = (entry: string): ReadonlyArray<string> => [join(ROOT, "scripts", "run.mjs"), entry]

export const PG = "postgres://postgres@127.0.0.1:5432"

/** The master key of every proxy a benchmark starts. */
export const MASTER_KEY = "sk-bench-master-key"

/** The connections the proxy benchmarks load with, in all. */
export const CONNECTIONS = 64

/** The chat completion every proxy benchmark sends. */
export const BODY = JSON.stringify({
  model: "bench-model",
  max_tokens: 100,
  messages: [{ role: "user", content: "Write one sentence about a fox." }]
})

export interface Started {
  readonly child: ChildProcess
  readonly match: RegExpExecArray
}

/**
 * A child process running `args` (a TypeScript entry, then its arguments) under Node
 * options `nodeOptions`, ready once a stdout line matches; its output keeps being drained.
 */
export const startChild = (
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  nodeOptions: ReadonlyArray<string> = []
): Promise<Started> =>
  new Promise((resolve, reject) => {
    const [entry = "", ...rest] = args
    const child = spawn(process.execPath, [...nodeOptions, ...launch(entry), ...rest], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)))
    if (child.stdout === null) return reject(new Error("no stdout"))
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = ready.exec(line)
      if (match !== null) resolve({ child, match })
    })
  })

/** The Node options before `scripts/run.mjs` in package.json's `start` script. */
const startOptions = (): ReadonlyArray<string> => {
  const manifest: unknown = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"))
  const scripts =
    typeof manifest === "object" && manifest !== null ? Reflect.get(manifest, "scripts") : undefined
  const start = typeof scripts === "object" && scripts !== null ? Reflect.get(scripts, "start") : undefined
  const options =
    typeof start === "string" ? /^exec node ((?:--\S+ )*)scripts\/run\.mjs /.exec(start)?.[1] : undefined
  if (options === undefined)
    throw new Error("package.json's start script is not `exec node [--options] scripts/run.mjs ...`")
  return options.split(" ").filter((option) => option !== "")
}

/**
 * The proxy example on the config at `configPath` and a free port, with the Node options
 * `npm start` gives it; `match[1]` is its URL.
 */
export const startProxy = (configPath: string): Promise<Started> =>
  startChild(
    ["examples/proxy/main.ts", "--config", configPath],
    { PORT: "0" },
    /listening on (http:\/\/\S+)$/,
    startOptions()
  )

/** SIGTERM, and resolves once the process has exited. */
export const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.removeAllListeners("exit")
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/** A JSON POST with a bearer token; the parsed object, or an error naming the status. */
export const post = async (url: string, token: string, body: unknown): Promise<Record<string, unknown>> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  const json: unknown = await response.json()
  if (!response.ok || typeof json !== "object" || json === null) throw new Error(`${url}: ${response.status}`)
  return Object.fromEntries(Object.entries(json))
}

/** Whether the local PostgreSQL server answers. */
export const pgReachable = (): Promise<boolean> => reachable("127.0.0.1", 5432)

/**
 * A proxy `config.yaml` in `dir` serving one priced model, `bench-model`, from the
 * provider at `upstreamUrl`, on the store at `databaseUrl`; returns its path.
 */
export const writeProxyConfig = (
  dir: string,
  name: string,
  options: { readonly upstreamUrl: string; readonly databaseUrl: string; readonly masterKey: string }
): string => {
  const path = join(dir, `${name}.yaml`)
  writeFileSync(
    path,
    [
      "model_list:",
      "  - model_name: bench-model",
      "    litellm_params:",
      "      model: openai/bench-upstream",
      `      api_base: ${JSON.stringify(`${options.upstreamUrl}/v1`)}`,
      "      input_cost_per_token: 0.000001",
      "      output_cost_per_token: 0.000002",
      "general_settings:",
      `  master_key: ${JSON.stringify(options.masterKey)}`,
      // Quoted: `memory:` alone would read as a YAML mapping.
      `  database_url: ${JSON.stringify(options.databaseUrl)}`,
      ""
    ].join("\n")
  )
  return path
}

const onPg = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(PgClient.PgClient, f).pipe(
        Effect.provide(PgClient.layer({ url: Redacted.make(`${PG}/postgres`), maxConnections: 1 }))
      )
    )
  )

/** Runs `use` with the URL of a fresh database on the local server, dropped afterwards. */
export const withFreshDatabase = async <A>(use: (url: string) => Promise<A>): Promise<A> => {
  const database = `tb_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`
  await onPg((sql) => sql`CREATE DATABASE ${sql(database)}`)
  try {
    return await use(`${PG}/${database}`)
  } finally {
    await onPg((sql) => sql`DROP DATABASE IF EXISTS ${sql(database)} WITH (FORCE)`)
  }
}
