/**
 * The proxy example as a user runs it: `npm start` (with `-- --config FILE` when a
 * configuration is given) as a child process, in a fresh working directory that
 * holds the checkout (linked) and nothing else, so `.teambudget/` and the config file
 * land there and never in the checkout.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Option } from "effect"

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)))

const LINKED = ["package.json", "node_modules", "scripts", "src", "examples", "tsconfig.json"]

export interface ProxyProcess {
  readonly child: ChildProcess
  /** Its working directory. */
  readonly dir: string
  /** `http://127.0.0.1:port`. */
  readonly url: string
  /** The master key it printed, when it generated one. */
  readonly printedMasterKey: string | undefined
  /** Every stdout and stderr line so far. */
  readonly output: Array<string>
  /** The structured request log lines so far. */
  readonly requests: () => Array<Record<string, unknown>>
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>
  /** Sends a signal to `npm` (as `kill PID` or `docker stop` would) and waits for its exit. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | string>
  /** Ends `npm` and everything it started, at once (clean-up after a failure). */
  readonly kill: () => void
}

export interface StartOptions {
  /** A `config.yaml` to write and pass with `--config`. */
  readonly config?: string
  readonly env?: Record<string, string>
  /** Reuse a working directory (to restart on the same embedded store). */
  readonly dir?: string
  readonly timeoutMs?: number
}

/** A working directory with the checkout linked in. */
export const workDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "tb-proxy-"))
  for (const name of LINKED) symlinkSync(join(ROOT, name), join(dir, name))
  return dir
}

/** SIGKILL to the whole process group of `child` (it was spawned detached). */
const killGroup = (child: ChildProcess): void => {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, "SIGKILL")
  } catch {
    // The group has already exited.
  }
}

export const removeWorkDir = (dir: string): void => rmSync(dir, { recursive: true, force: true })

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const parseLine = (line: string): Option.Option<Record<string, unknown>> => {
  if (!line.startsWith("{")) return Option.none()
  try {
    const value: unknown = JSON.parse(line)
    return isRecord(value) && value["msg"] === "request" ? Option.some(value) : Option.none()
  } catch {
    return Option.none()
  }
}

export const start = (options: StartOptions = {}): Promise<ProxyProcess> => {
  const dir = options.dir ?? workDir()
  const args = ["start"]
  if (options.config !== undefined) {
    writeFileSync(join(dir, "config.yaml"), options.config)
    args.push("--", "--config", "config.yaml")
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: "0", ...options.env }
  // Only what the test says: nothing inherited chooses the stores or the key.
  for (const name of ["MASTER_KEY", "DATABASE_URL", "REDIS_URL", "REDIS_PREFIX"])
    if (options.env?.[name] === undefined) delete env[name]
  // Its own process group, so a clean-up can end npm and the proxy under it together.
  const child = spawn("npm", args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"], detached: true })
  const output: Array<string> = []
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  )
  return new Promise<ProxyProcess>((resolve, reject) => {
    let masterKey: string | undefined
    const timer = setTimeout(() => {
      killGroup(child)
      reject(new Error(`the proxy did not start in time:\n${output.join("\n")}`))
    }, options.timeoutMs ?? 20_000)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`the proxy exited (${code}) before listening:\n${output.join("\n")}`))
    })
    const onLine = (line: string) => {
      output.push(line)
      const key = /^export MASTER_KEY=(\S+)$/.exec(line)
      if (key !== null) masterKey = key[1]
      const listening = /^teambudget proxy listening on (http:\/\/\S+)$/.exec(line)
      if (listening?.[1] === undefined) return
      clearTimeout(timer)
      resolve({
        child,
        dir,
        url: listening[1],
        printedMasterKey: masterKey,
        output,
        requests: () => output.flatMap((l): Array<Record<string, unknown>> => Option.toArray(parseLine(l))),
        exited,
        stop: (signal = "SIGTERM") => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          return exited
        },
        kill: () => killGroup(child)
      })
    }
    if (child.stdout === null || child.stderr === null) return reject(new Error("no output pipes"))
    createInterface({ input: child.stdout }).on("line", onLine)
    createInterface({ input: child.stderr }).on("line", (line) => output.push(line))
  })
}
