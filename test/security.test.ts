/**
 * Secrets at rest, in comparison, in logs, and in SQL:
 * - after a full round of management calls and guarded calls, every table of the
 *   SQLite and PostgreSQL stores, read with raw SQL, holds key hashes and never a
 *   plaintext key (nor the master key);
 * - the master key is compared in constant time, whatever the lengths;
 * - a full run of the proxy example prints neither the master key, nor any key it
 *   issued or was shown, nor any of their hashes;
 * - every SQL text the stores build without parameter binding is constant.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs"
import crypto from "node:crypto"
import { syncBuiltinESMExports } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, describe, expect, it, vi } from "vitest"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as Bearer from "../src/http/Bearer.js"
import {
  Invalidation,
  LlmGuard,
  ManagementApi,
  SqlStore,
  type StoreServices,
  TeamBudget,
  Token
} from "../src/index.js"
import * as FakeUpstream from "./support/fakeUpstream.js"
import { at } from "./support/httpClient.js"
import { describePg, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"
import * as Proxy from "./support/proxyProcess.js"
import { testPricing } from "./support/runtime.js"
import { type Dump, dumpTables, toText } from "./support/sqlDump.js"
import { audit } from "./support/sqlTextAudit.js"

const MASTER_KEY = "sk-security-master-91c4e0d7b2a6f358"

/** What must never be stored or printed for a key: its plaintext, its random part, its hash. */
const forms = (key: string): ReadonlyArray<string> => [key, key.slice(3, -4), Token.hashToken(key)]

/**
 * Management calls and guarded calls over the SDK's own handlers, as a host runs them:
 * teams, users, members, keys made, changed, blocked, deleted, a JSON call and a
 * streamed call settled, and a refused key. Returns every key issued.
 */
const exercise = async (store: Layer.Layer<StoreServices | Invalidation.Invalidation, unknown>) => {
  const runtime = ManagedRuntime.make(TeamBudget.layer(store, { pricing: testPricing }))
  try {
    const api = ManagementApi.toWebHandler(runtime, { masterKey: Redacted.make(MASTER_KEY) })
    const guard = LlmGuard.toWebHandler(runtime)
    const admin = async (path: string, body?: unknown) => {
      const response = await api(
        new Request(`http://localhost${path}`, {
          method: body === undefined ? "GET" : "POST",
          headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
      )
      const json: unknown = await response.json()
      expect(response.status, JSON.stringify(json)).toBe(200)
      return json
    }
    const answer = (stream: boolean) => () =>
      Promise.resolve(
        stream
          ? new Response(
              'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n' +
                'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\ndata: [DONE]\n\n',
              { headers: { "content-type": "text/event-stream" } }
            )
          : Response.json({
              choices: [{ message: { content: "hello" } }],
              usage: { prompt_tokens: 5, completion_tokens: 2 }
            })
      )
    const chat = async (key: string, stream: boolean) => {
      const response = await guard(
        new Request("http://localhost/v1/chat/completions", {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "small",
            messages: [{ role: "user", content: "hi" }],
            max_tokens: 10,
            stream
          })
        }),
        answer(stream)
      )
      await response.text()
      return response.status
    }

    await admin("/organization/new", { organization_id: "acme", organization_alias: "Acme", max_budget: 100 })
    await admin("/team/new", {
      team_id: "sec",
      team_alias: "Security",
      organization_id: "acme",
      max_budget: 50
    })
    await admin("/user/new", { user_id: "ada", max_budget: 10 })
    await admin("/team/member_add", { team_id: "sec", member: { user_id: "ada" }, max_budget_in_team: 5 })
    const issue = async (body: Record<string, unknown>) => {
      const key = at(await admin("/key/generate", body), "key")
      if (typeof key !== "string") throw new Error("no key")
      return key
    }
    const kept = await issue({ team_id: "sec", user_id: "ada", key_alias: "ada-laptop", metadata: { a: 1 } })
    const other = await issue({ team_id: "sec", max_budget: 1 })
    const deleted = await issue({ user_id: "ada" })
    await admin("/key/update", { key: kept, max_budget: 2, metadata: { b: 2 } })
    await admin("/key/block", { key: other })
    await admin("/key/unblock", { key: other })
    expect(await chat(kept, false)).toBe(200)
    expect(await chat(other, true)).toBe(200)
    expect(await chat(deleted, false)).toBe(200)
    expect(await chat("sk-not-issued-but-shown-0123456789", false)).toBe(401)
    await admin(`/key/info?key=${encodeURIComponent(kept)}`)
    await admin("/key/delete", { keys: [deleted] })
    return { live: [kept, other], all: [kept, other, deleted] }
  } finally {
    await runtime.dispose()
  }
}

const expectOnlyHashes = (dump: Dump, keys: { live: ReadonlyArray<string>; all: ReadonlyArray<string> }) => {
  expect(Object.keys(dump)).toEqual(expect.arrayContaining(["tb_keys", "tb_spend_logs", "tb_teams"]))
  const everything = toText(dump)
  for (const key of keys.all) {
    expect(everything).not.toContain(key)
    expect(everything).not.toContain(key.slice(3, -4))
  }
  expect(everything).not.toContain("sk-not-issued-but-shown-0123456789")
  expect(everything).not.toContain(MASTER_KEY)
  expect(everything).not.toContain(Token.hashToken(MASTER_KEY))
  // The keys table holds each live key under its SHA-256 digest, and nothing longer.
  const stored = (dump["tb_keys"] ?? []).map((row) => row["hash"])
  expect([...stored].sort()).toEqual(keys.live.map(Token.hashToken).sort())
  for (const row of dump["tb_keys"] ?? []) expect(String(row["display_prefix"])).toMatch(/^sk-\.\.\.\S{4}$/)
  // Spend log rows name the key by its hash, never by the key.
  const hashes = keys.all.map((key): string => Token.hashToken(key))
  for (const row of dump["tb_spend_logs"] ?? []) expect(hashes).toContain(String(row["key_hash"]))
}

describe("keys at rest", () => {
  const dir = mkdtempSync(join(tmpdir(), "tb-security-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("SQLite: every table read back holds key hashes only, never a key or the master key", async () => {
    const filename = join(dir, "store.db")
    const store = Layer.merge(SqlStore.layerSqlite({ filename }), Invalidation.layerLocal)
    const keys = await exercise(store)
    const dump = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(SqlClient.SqlClient, dumpTables).pipe(
          Effect.provide(SqlStore.sqliteClient({ filename }))
        )
      )
    )
    expectOnlyHashes(dump, keys)
  })
})

describePg("keys at rest on PostgreSQL", () => {
  const database = useDatabase()

  it("every table read back holds key hashes only, never a key or the master key", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const schema = yield* schemaIn(database.name)
          const client = PgClient.layer({
            url: Redacted.make(pgUrl(database.name, schema)),
            maxConnections: 2
          })
          const store = Layer.merge(SqlStore.layer(), Invalidation.layerLocal).pipe(Layer.provide(client))
          const keys = yield* Effect.promise(() => exercise(store))
          const dump = yield* Effect.flatMap(SqlClient.SqlClient, dumpTables).pipe(Effect.provide(client))
          expectOnlyHashes(dump, keys)
        })
      )
    )
  })
})

describe("the master key check", () => {
  const check = Bearer.masterKeyCheck(Redacted.make(MASTER_KEY))
  const token = (value: string) => Redacted.make(value)

  it("admits the master key only; other lengths and contents are refused without throwing", () => {
    expect(check(token(MASTER_KEY))).toBe(true)
    for (const other of [
      "",
      "s",
      MASTER_KEY.slice(0, -1),
      `${MASTER_KEY}0`,
      `${MASTER_KEY}${MASTER_KEY}`,
      MASTER_KEY.toUpperCase(),
      ` ${MASTER_KEY}`,
      `${MASTER_KEY.slice(0, -1)}\u00e9`,
      "\u{1F511}".repeat(40),
      "x".repeat(100_000)
    ]) {
      expect(() => check(token(other))).not.toThrow()
      expect(check(token(other))).toBe(false)
    }
  })

  it("an empty master key admits nobody, not even an empty token", () => {
    const none = Bearer.masterKeyCheck(Redacted.make(""))
    expect(none(token(""))).toBe(false)
    expect(none(token(MASTER_KEY))).toBe(false)
  })

  it("every comparison goes through crypto.timingSafeEqual, on equal-length digests", () => {
    const spy = vi.spyOn(crypto, "timingSafeEqual")
    // Bearer.ts imports the named export: make it see the spy.
    syncBuiltinESMExports()
    try {
      const fresh = Bearer.masterKeyCheck(Redacted.make(MASTER_KEY))
      const inputs = ["short", MASTER_KEY, "y".repeat(5000)]
      for (const input of inputs) fresh(token(input))
      expect(spy).toHaveBeenCalledTimes(inputs.length)
      for (const [a, b] of spy.mock.calls) expect([a.byteLength, b.byteLength]).toEqual([32, 32])
    } finally {
      spy.mockRestore()
      syncBuiltinESMExports()
    }
  })
})

const proxyConfig = (upstream: string) => `
model_list:
  - model_name: gpt-sec
    litellm_params:
      model: openai/gpt-sec
      api_base: ${upstream}/v1
      api_key: os.environ/SEC_UPSTREAM_KEY
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000001
      max_tokens: 100
`

describe("a full run of the proxy example", () => {
  const UPSTREAM_KEY = "sk-upstream-security-6d2f81"
  const SHOWN = "sk-shown-but-never-issued-a8c03e1f77"

  it("prints neither the master key nor any key it issued or was shown, nor their hashes", async () => {
    const upstream = await FakeUpstream.start()
    const proxy = await Proxy.start({
      config: proxyConfig(upstream.url),
      env: { MASTER_KEY, SEC_UPSTREAM_KEY: UPSTREAM_KEY }
    })
    const keys: Array<string> = []
    try {
      const call = async (
        path: string,
        key: string,
        body?: unknown,
        headers: Record<string, string> = {}
      ) => {
        const response = await fetch(`${proxy.url}${path}`, {
          method: body === undefined ? "GET" : "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        const reply = await response.text()
        return { status: response.status, json: reply.startsWith("{") ? JSON.parse(reply) : reply }
      }
      const admin = (path: string, body?: unknown) => call(path, MASTER_KEY, body)
      const chat = (key: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
        call(
          "/v1/chat/completions",
          key,
          { model: "gpt-sec", messages: [{ role: "user", content: "hi" }], ...extra },
          headers
        )
      const issue = async (body: Record<string, unknown>) => {
        const reply = await admin("/key/generate", body)
        const key = at(reply.json, "key")
        if (typeof key !== "string") throw new Error(`no key: ${JSON.stringify(reply.json)}`)
        keys.push(key)
        return key
      }

      expect((await admin("/team/new", { team_id: "sec", team_alias: "Sec", max_budget: 10 })).status).toBe(
        200
      )
      const key = await issue({ team_id: "sec", key_alias: "sec-key" })
      const poor = await issue({ max_budget: 0.00001 })
      expect((await chat(key, { max_tokens: 20 })).status).toBe(200)
      expect((await chat(key, { max_tokens: 20, stream: true })).status).toBe(200)
      expect((await chat(key, { max_tokens: 20 }, { "x-fake-status": "500" })).status).toBe(500)
      expect((await chat(poor, { max_tokens: 100 })).status).toBe(402)
      expect((await chat(SHOWN)).status).toBe(401)
      expect((await call("/team/new", key, { team_alias: "not allowed" })).status).toBe(403)
      expect((await call("/team/info?team_id=sec", SHOWN)).status).toBe(401)
      expect((await admin("/key/update", { key, max_budget: "lots" })).status).toBe(400)
      expect((await admin(`/key/info?key=${encodeURIComponent(key)}`)).status).toBe(200)
      expect((await admin(`/key/info?key=${encodeURIComponent(SHOWN)}`)).status).toBe(404)
      expect((await admin("/key/block", { key })).status).toBe(200)
      expect((await chat(key, { max_tokens: 20 })).status).toBe(403)
      expect((await admin("/key/delete", { keys: [key, poor] })).status).toBe(200)
      expect((await chat(key)).status).toBe(401)
      expect(await proxy.stop("SIGTERM")).toBe(0)

      const output = proxy.output.join("\n")
      expect(proxy.requests().length).toBeGreaterThanOrEqual(16)
      const secrets = [
        MASTER_KEY,
        Token.hashToken(MASTER_KEY),
        UPSTREAM_KEY,
        ...forms(SHOWN),
        ...keys.flatMap(forms)
      ]
      for (const secret of secrets) expect(output).not.toContain(secret)
    } finally {
      proxy.kill()
      await upstream.close()
      Proxy.removeWorkDir(proxy.dir)
    }
  })
})

describe("SQL text", () => {
  const root = join(import.meta.dirname, "..")

  it("every text the SQL stores pass to sql.unsafe or sql.literal is constant", () => {
    const uses = audit(root, ["src/store"])
    expect(uses.length).toBeGreaterThan(10)
    expect(uses.filter((use) => use.problem !== undefined)).toEqual([])
  })

  it("the audit itself flags values spliced into SQL text", () => {
    const dir = mkdtempSync(join(tmpdir(), "tb-sql-audit-"))
    try {
      mkdirSync(join(dir, "src"))
      symlinkSync(join(root, "node_modules"), join(dir, "node_modules"))
      writeFileSync(
        join(dir, "src", "spliced.ts"),
        [
          'import type { SqlClient } from "@effect/sql/SqlClient"',
          'const TABLE = "tb_x"',
          "export const byId = (sql: SqlClient, id: string) => sql.unsafe(`SELECT * FROM ${TABLE} WHERE id = '${id}'`)",
          'export const sorted = (sql: SqlClient, column: "a" | "b") => sql.literal(`ORDER BY ${column}`)',
          "const order = (sql: SqlClient, direction: string) => sql.literal(`ORDER BY x ${direction}`)",
          'export const both = (sql: SqlClient, input: string) => [order(sql, "ASC"), order(sql, input)]'
        ].join("\n")
      )
      const uses = audit(dir, ["src"])
      expect(uses.map((use) => [use.line, use.problem === undefined])).toEqual([
        [3, false],
        [4, true],
        [5, false]
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
