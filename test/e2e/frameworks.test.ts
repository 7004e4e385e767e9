/**
 * The Express, Fastify and Hono examples, each started as its own process the way its
 * header says (`node --import tsx examples/<framework>/main.ts`), with a fake
 * OpenAI-compatible upstream on loopback, and called over HTTP: the management API
 * under `/admin`, the app's own guarded `/chat` route, JSON and streamed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as FakeUpstream from "../support/fakeUpstream.js"
import { ROOT } from "../support/proxyProcess.js"

const MASTER_KEY = "sk-admin-e2e-frameworks-0c1d2e3f"
const UPSTREAM_KEY = "sk-provider-e2e-9a8b7c6d"

interface App {
  readonly url: string
  readonly output: Array<string>
  readonly stop: () => Promise<number | string>
}

const startApp = (framework: string, upstream: string): Promise<App> =>
  new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: "0",
      MASTER_KEY,
      OPENAI_BASE_URL: `${upstream}/v1`,
      OPENAI_API_KEY: UPSTREAM_KEY
    }
    delete env["DATABASE_URL"]
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", join("examples", framework, "main.ts")],
      { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] }
    )
    const output: Array<string> = []
    const exited = new Promise<number | string>((done) =>
      child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"))
    )
    void exited.then((code) => reject(new Error(`${framework} exited (${code}):\n${output.join("\n")}`)))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${framework} did not start:\n${output.join("\n")}`))
    }, 25_000)
    if (child.stdout === null || child.stderr === null) return reject(new Error("no pipes"))
    createInterface({ input: child.stderr }).on("line", (line) => output.push(line))
    createInterface({ input: child.stdout }).on("line", (line) => {
      output.push(line)
      const listening = /listening on (http:\/\/\S+)/.exec(line)
      if (listening?.[1] === undefined) return
      clearTimeout(timer)
      resolve({
        url: listening[1].replace(/\/$/, ""),
        output,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
          return exited
        }
      })
    })
  })

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const field = (value: unknown, ...path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((current, step) => (isRecord(current) ? current[step] : undefined), value)

const FRAMEWORKS = ["express", "fastify", "hono"] as const

describe("the framework examples", () => {
  let upstream: FakeUpstream.FakeUpstream
  const apps = new Map<string, App>()

  // The three start side by side: each loads the SDK through tsx, which takes a while.
  beforeAll(async () => {
    upstream = await FakeUpstream.start()
    await Promise.all(
      FRAMEWORKS.map(async (framework) => apps.set(framework, await startApp(framework, upstream.url)))
    )
  }, 60_000)

  afterAll(async () => {
    await Promise.all([...apps.values()].map((app) => app.stop()))
    await upstream?.close()
  })

  it.each(FRAMEWORKS)(
    "%s: guards its own route and serves the management API under /admin",
    async (framework) => {
      const app = apps.get(framework)
      if (app === undefined) throw new Error(`${framework} did not start`)
      const admin = async (path: string, body?: unknown) => {
        const response = await fetch(`${app.url}/admin${path}`, {
          method: body === undefined ? "GET" : "POST",
          headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        const json: unknown = await response.json()
        return { status: response.status, json }
      }
      const chat = (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
        fetch(`${app.url}/chat`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }], ...body })
        })

      expect((await admin("/team/new", { team_id: "web", team_alias: "web", max_budget: 1 })).status).toBe(
        200
      )
      const generated = await admin("/key/generate", { team_id: "web", key_alias: `${framework}-key` })
      const key = field(generated.json, "key")
      if (typeof key !== "string") throw new Error("no key")

      const answered = await chat(key, { max_tokens: 50 }, { "x-fake-usage": "10,20" })
      expect(answered.status).toBe(200)
      expect(Number(answered.headers.get("x-budget-remaining-usd"))).toBeLessThan(1)
      expect(field(await answered.json(), "object")).toBe("chat.completion")
      const received = upstream.received.at(-1)
      expect(received?.path).toBe("/v1/chat/completions")
      expect(received?.headers["authorization"]).toBe(`Bearer ${UPSTREAM_KEY}`)
      const afterOne = field((await admin(`/key/info?key=${encodeURIComponent(key)}`)).json, "info", "spend")
      expect(afterOne).toBeGreaterThan(0)

      // A stream passes through unchanged and is charged from its usage chunk.
      const before = upstream.streams.length
      const streamed = await chat(key, { stream: true }, { "x-fake-usage": "10,20" })
      expect(streamed.status).toBe(200)
      const bytes = Buffer.from(await streamed.arrayBuffer())
      expect(bytes.equals(Buffer.concat(upstream.streams[before]?.sent ?? []))).toBe(true)
      await expect
        .poll(async () =>
          field((await admin(`/key/info?key=${encodeURIComponent(key)}`)).json, "info", "spend")
        )
        .toBeCloseTo(2 * Number(afterOne), 9)

      // A pool smaller than the next worst case refuses with 402 naming the team.
      expect((await admin("/team/update", { team_id: "web", max_budget: 0.00004 })).status).toBe(200)
      const refused = await chat(key, { max_tokens: 50 })
      expect(refused.status).toBe(402)
      expect(field(await refused.json(), "error", "code")).toBe("team_budget_exceeded")

      const unknown = await chat("sk-not-a-key", {})
      expect(unknown.status).toBe(401)
      expect((await fetch(`${app.url}/admin/team/info?team_id=web`)).status).toBe(401)
    }
  )
})
