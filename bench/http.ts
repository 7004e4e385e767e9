/**
 * The LLM guard's cost over HTTP: the same Hono app (a mock model) with and without
 * the guard, on loopback, loaded by autocannon. The server runs in its own process;
 * rounds alternate so drift hits both sides alike.
 *
 * A mock model that answers at once does almost nothing, so the guard's own work is
 * most of a guarded request: that is the worst case, measured first, and shows the
 * guard's raw cost per request. Then a model that takes 25 ms to answer (still far
 * faster than a real one) at 32 and 64 connections: the case the target is about.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { type Figures, load, mean } from "./load.js"
import { launch } from "./processes.js"
import { fmt } from "./stats.js"

const SERVER = fileURLToPath(new URL("./httpServer.ts", import.meta.url))

const startServer = (): Promise<{ child: ChildProcess; port: number; key: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, launch(SERVER), {
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`the benchmark server exited with ${code}`)))
    if (child.stdout === null) return reject(new Error("no stdout"))
    const lines = createInterface({ input: child.stdout })
    lines.on("line", (line) => {
      const [word, port, key] = line.split(" ")
      if (word === "READY" && port !== undefined && key !== undefined)
        resolve({ child, port: Number(port), key })
    })
  })

interface Scenario {
  readonly stream: boolean
  readonly latencyMs: number
  readonly connections: number
}

const SCENARIOS: ReadonlyArray<Scenario & { readonly name: string }> = [
  { name: "JSON, instant model, 32 conn.", stream: false, latencyMs: 0, connections: 32 },
  { name: "SSE, instant model, 32 conn.", stream: true, latencyMs: 0, connections: 32 },
  { name: "JSON, 25 ms model, 32 conn.", stream: false, latencyMs: 25, connections: 32 },
  { name: "JSON, 25 ms model, 64 conn.", stream: false, latencyMs: 25, connections: 64 },
  { name: "SSE, 25 ms model, 64 conn.", stream: true, latencyMs: 25, connections: 64 }
]

// For quicker iterations: `HTTP_BENCH_ONLY=SSE` keeps the scenarios whose name contains it,
// `HTTP_BENCH_SECONDS` / `HTTP_BENCH_ROUNDS` shorten the rounds. Unset, the full section runs.
const ONLY = process.env.HTTP_BENCH_ONLY ?? ""
const SECONDS = Number(process.env.HTTP_BENCH_SECONDS ?? "5")
const ROUNDS = Number(process.env.HTTP_BENCH_ROUNDS ?? "3")

const scenario = async (port: number, key: string, { stream, latencyMs, connections }: Scenario) => {
  const body = JSON.stringify({
    model: "bench",
    messages: [{ role: "user", content: "Write one sentence about a fox." }],
    max_tokens: 100,
    ...(stream ? { stream: true } : {})
  })
  const query = `?latency=${latencyMs}`
  const bare = `http://127.0.0.1:${port}/bare/v1/chat/completions${query}`
  const guarded = `http://127.0.0.1:${port}/guarded/v1/chat/completions${query}`
  await load(bare, key, body, 2, connections)
  await load(guarded, key, body, 2, connections)
  const bareRounds: Array<Figures> = []
  const guardedRounds: Array<Figures> = []
  for (let round = 0; round < ROUNDS; round++) {
    bareRounds.push(await load(bare, key, body, SECONDS, connections))
    guardedRounds.push(await load(guarded, key, body, SECONDS, connections))
  }
  return { bare: mean(bareRounds), guarded: mean(guardedRounds) }
}

export const run = async (): Promise<string> => {
  const { child, port, key } = await startServer()
  try {
    const results = []
    for (const each of SCENARIOS.filter(({ name }) => name.includes(ONLY)))
      results.push({ name: each.name, ...(await scenario(port, key, each)) })
    return [
      "### HTTP: the same Hono app with and without the LLM guard",
      "",
      "Mock model (instant, or answering after 25 ms), memory store, server in its own process, " +
        `autocannon on the same machine; mean of ${ROUNDS} alternating ${SECONDS} s rounds after a warm-up.`,
      "",
      "| app | bare req/s | guarded req/s | guarded / bare | bare p50 / p99 ms | guarded p50 / p99 ms | errors |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...results.map(
        ({ name, bare, guarded }) =>
          `| ${name} | ${fmt(bare.rps, 0)} | ${fmt(guarded.rps, 0)} | **${fmt(guarded.rps / bare.rps, 3)}** | ` +
          `${fmt(bare.p50, 1)} / ${fmt(bare.p99, 1)} | ${fmt(guarded.p50, 1)} / ${fmt(guarded.p99, 1)} | ` +
          `${bare.errors + guarded.errors} |`
      ),
      "",
      "Target: the guard costs under 10% of the bare app's throughput (guarded / bare over 0.9). " +
        "With an instant model the bare app does almost nothing, so the ratio is the guard's whole " +
        "per-request cost (authorize, hold, settle, body parsing, metering) against a near-empty handler; " +
        "the rows with a 25 ms model are the ones the target is about.",
      ""
    ].join("\n")
  } finally {
    child.removeAllListeners("exit")
    child.kill("SIGTERM")
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await run())
