/**
 * Hostile input through the Hono adapter on loopback, over an SQLite store and a
 * PostgreSQL one (when reachable), each read back with raw SQL: every management endpoint and every LLM route, random and malicious
 * bodies and queries. No answer is a server error, a refusal writes nothing, nothing
 * reaches `Object.prototype`, and no alias or metadata gets into a header.
 */
import type { AddressInfo } from "node:net"
import { serve } from "@hono/node-server"
import { Hono } from "hono"
import type { SqlClient } from "@effect/sql/SqlClient"
import { Layer, ManagedRuntime, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as HonoAdapter from "../../src/adapters/hono.js"
import { Invalidation, LlmGuard, ManagementApi, SqlStore, TeamBudget } from "../../src/index.js"
import * as FakeUpstream from "../support/fakeUpstream.js"
import { expectUnpolluted, hostileSuite, setUp, type Target } from "../support/hostile.js"
import { testPricing } from "../support/runtime.js"
import { describePg, pgUrl, useDatabase } from "../support/postgres.js"
import { dump, stateText } from "../support/sqlDump.js"

const MASTER_KEY = "sk-hostile-master-5a0c9e1b7d"

/** The SDK over a store on `client`, with the client itself for raw reads. */
const runtimeOn = (client: Layer.Layer<SqlClient, unknown>) => {
  const store = Layer.merge(SqlStore.layer(), Invalidation.layerLocal).pipe(Layer.provideMerge(client))
  return ManagedRuntime.make(Layer.merge(TeamBudget.layer(store, { pricing: testPricing }), client))
}

/** The suite over the store `client()` makes (called once, before the tests). */
const hostileHono = (client: () => Layer.Layer<SqlClient, unknown>) => {
  let runtime: ReturnType<typeof runtimeOn>
  let upstream: FakeUpstream.FakeUpstream
  let server: ReturnType<typeof serve>
  let target: Target
  let key = ""
  let managedKey = ""

  beforeAll(async () => {
    runtime = runtimeOn(client())
    upstream = await FakeUpstream.start()
    const app = new Hono()
    app.route(
      "/admin",
      HonoAdapter.managementApp(ManagementApi.toWebHandler(runtime, { masterKey: Redacted.make(MASTER_KEY) }))
    )
    const guard = HonoAdapter.llmGuard(LlmGuard.toWebHandler(runtime))
    for (const route of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]) {
      app.post(route, guard, (c) => upstream.forward(c.req.raw))
    }
    const port = await new Promise<number>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
        resolve(info.port)
      )
    })
    target = {
      url: `http://127.0.0.1:${port}`,
      adminBase: "/admin",
      masterKey: MASTER_KEY,
      dump: () => runtime.runPromise(dump).then(stateText)
    }
    ;({ key, managedKey } = await setUp(target))
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => {
      if ("closeAllConnections" in server) server.closeAllConnections()
      server.close(() => resolve())
    })
    await upstream.close()
    await runtime.dispose()
  })

  hostileSuite(() => ({ target, key, managedKey }), { management: 250, llm: 150, headers: 40 })

  it("a body nested past 100 levels, or metadata past 32, is a 400 that says so", async () => {
    const post = async (path: string, body: string) => {
      const response = await fetch(`${target.url}/admin${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
        body
      })
      return { status: response.status, json: await response.json() }
    }
    const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
    expect(await post("/team/new", `{"team_alias":"deep","metadata":${nested(100)}}`)).toMatchObject({
      status: 400,
      json: { error: { message: expect.stringContaining("nests deeper than 100 levels") } }
    })
    expect(await post("/team/new", `{"team_alias":"deep","metadata":${nested(33)}}`)).toMatchObject({
      status: 400,
      json: { error: { param: "metadata", message: expect.stringContaining("deeper than 32 levels") } }
    })
    expect(await post("/team/new", `{"team_alias":"deep","metadata":${nested(32)}}`)).toMatchObject({
      status: 200
    })
  })

  it("nothing reached Object.prototype, and the server still answers", async () => {
    expectUnpolluted()
    const health = await fetch(`${target.url}/admin/health/readiness`)
    expect(health.status).toBe(200)
  })
}

describe("hostile input through the Hono adapter, on SQLite", () => {
  hostileHono(() => SqlStore.sqliteClient({ filename: ":memory:" }))
})

describePg("hostile input through the Hono adapter, on PostgreSQL", () => {
  const database = useDatabase()
  hostileHono(() => SqlStore.pgClient({ url: Redacted.make(pgUrl(database.name)), maxConnections: 8 }))
})
