/**
 * Hostile input against the proxy example as a user runs it (a spawned `npm start`
 * over its embedded SQLite store, read back with raw SQL from this process): every
 * management endpoint and LLM route. No answer is a server error, a refusal writes
 * nothing, no alias reaches a header or forges a log line, and the process is still
 * serving at the end and drains cleanly.
 */
import { join } from "node:path"
import { Effect, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SqlStore } from "../../src/index.js"
import * as FakeUpstream from "../support/fakeUpstream.js"
import { hostileSuite, setUp, type Target } from "../support/hostile.js"
import * as Proxy from "../support/proxyProcess.js"
import { dump, stateText } from "../support/sqlDump.js"

const MASTER_KEY = "sk-hostile-proxy-master-3e7d1c"

const config = (upstream: string) => `
model_list:
  - model_name: small
    litellm_params:
      model: openai/small-upstream
      api_base: ${upstream}/v1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      max_tokens: 1000
general_settings:
  master_key: os.environ/HOSTILE_MASTER_KEY
  database_url: sqlite:.teambudget/hostile.db
`

describe("hostile input against the proxy example", () => {
  let upstream: FakeUpstream.FakeUpstream
  let proxy: Proxy.ProxyProcess
  let reader: { readonly dispose: () => Promise<void> } | undefined
  let target: Target
  let key = ""
  let managedKey = ""

  beforeAll(async () => {
    upstream = await FakeUpstream.start()
    proxy = await Proxy.start({ config: config(upstream.url), env: { HOSTILE_MASTER_KEY: MASTER_KEY } })
    // A second connection on the proxy's database file, for raw reads.
    const client = SqlStore.sqliteClient({ filename: join(proxy.dir, ".teambudget", "hostile.db") })
    const runtime = ManagedRuntime.make(client)
    reader = runtime
    target = {
      url: proxy.url,
      adminBase: "",
      masterKey: MASTER_KEY,
      dump: () => runtime.runPromise(Effect.map(dump, stateText))
    }
    ;({ key, managedKey } = await setUp(target))
  })
  afterAll(async () => {
    await reader?.dispose()
    proxy?.kill()
    await upstream?.close()
    if (proxy !== undefined) Proxy.removeWorkDir(proxy.dir)
  })

  hostileSuite(() => ({ target, key, managedKey }), { management: 100, llm: 80, headers: 15 })

  it("the process still serves, every log line is whole JSON, and SIGTERM drains it with exit 0", async () => {
    const health = await fetch(`${proxy.url}/health/readiness`)
    expect(health.status).toBe(200)
    expect(proxy.child.exitCode).toBeNull()
    expect(await proxy.stop("SIGTERM")).toBe(0)
    const requests = proxy.output.filter((line) => line.startsWith("{"))
    expect(requests.length).toBeGreaterThan(150)
    for (const line of requests) expect(() => JSON.parse(line), line).not.toThrow()
    // A line that is neither a request line nor one the proxy prints itself was forged.
    const own = /^(store: |models: |teambudget proxy listening on |SIGTERM: draining|drained; exiting|> |$)/
    expect(proxy.output.filter((line) => !line.startsWith("{") && !own.test(line))).toEqual([])
  })
})
