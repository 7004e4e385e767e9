/**
 * Several proxy processes (`npm start`) on one PostgreSQL database and one fake
 * upstream, a management client, and the ledger read back with raw SQL, so a test
 * can reconcile what the clients saw with what the database holds.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Either, Redacted } from "effect"
import { TokenEstimator } from "../../src/index.js"
import * as FakeUpstream from "./fakeUpstream.js"
import * as Proxy from "./proxyProcess.js"

export const MASTER_KEY = "sk-cluster-master-3b9d0e7f21a4c6"
const UPSTREAM_KEY = "sk-cluster-upstream-8c1f"
/** One micro-dollar per token either way: a call's cost is its token count in millionths. */
export const PRICE = 0.000001
/** Nano-dollars per token at {@link PRICE}. */
export const NANOS_PER_TOKEN = 1_000n

const config = (upstream: string, holdTtlSeconds: number | undefined) => `
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-test-upstream
      api_base: ${upstream}/v1
      api_key: os.environ/CLUSTER_UPSTREAM_KEY
      input_cost_per_token: ${PRICE}
      output_cost_per_token: ${PRICE}
      max_tokens: 1000
general_settings:
  master_key: os.environ/CLUSTER_MASTER_KEY
  database_url: os.environ/CLUSTER_DATABASE_URL
${holdTtlSeconds === undefined ? "" : `  hold_ttl_seconds: ${holdTtlSeconds}`}
`

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A value inside parsed JSON, by path; `undefined` where there is none. */
export const at = (value: unknown, ...path: ReadonlyArray<string | number>): unknown =>
  path.reduce<unknown>(
    (current, step) =>
      typeof current === "object" && current !== null ? Reflect.get(current, step) : undefined,
    value
  )

const reply = async (response: Response): Promise<Reply> => {
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, json: parse(text) }
}

/** A refused fetch (connection reset or refused) as status 0, so load loops keep counting. */
const orUnreachable = (call: () => Promise<Reply>): Promise<Reply> =>
  call().catch(() => ({ status: 0, headers: new Headers(), text: "", json: undefined }))

/** A chat body and the exact cost it holds: its estimated prompt tokens plus `max_tokens`. */
export const chatBody = (content: string, maxTokens: number, stream = false) => {
  const body = {
    model: "gpt-test",
    max_tokens: maxTokens,
    messages: [{ role: "user", content }],
    ...(stream ? { stream: true } : {})
  }
  const estimate = TokenEstimator.estimateBody(body)
  if (Either.isLeft(estimate)) throw new Error("the body must estimate")
  const promptTokens = estimate.right.promptTokens
  return {
    body,
    tokens: promptTokens + maxTokens,
    /** Makes the upstream report exactly the estimate, so a settlement charges what was held. */
    exactUsage: { "x-fake-usage": `${promptTokens},${maxTokens}` }
  }
}

export interface Cluster {
  readonly upstream: FakeUpstream.FakeUpstream
  readonly proxies: Array<Proxy.ProxyProcess>
  readonly admin: (path: string, body?: unknown, instance?: number) => Promise<Reply>
  /** Generates a key (through `instance`, the first by default) and returns its plaintext. */
  readonly generate: (body: Record<string, unknown>, instance?: number) => Promise<string>
  /** A chat completion through instance `instance`; status 0 when it could not connect. */
  readonly chat: (
    instance: number,
    key: string,
    body: Record<string, unknown>,
    headers?: Record<string, string>
  ) => Promise<Reply>
  /** A streamed call through `instance`, left open: the response, its body still unread. */
  readonly openStream: (
    instance: number,
    key: string,
    body: Record<string, unknown>,
    headers?: Record<string, string>
  ) => Promise<Response>
  readonly stop: () => Promise<void>
}

export interface ClusterOptions {
  readonly instances: number
  /** Where the proxies find PostgreSQL (the shared server or a TCP proxy in front of it). */
  readonly databaseUrl: string
  readonly holdTtlSeconds?: number
}

export const start = async (options: ClusterOptions): Promise<Cluster> => {
  const upstream = await FakeUpstream.start()
  const env = {
    CLUSTER_MASTER_KEY: MASTER_KEY,
    CLUSTER_UPSTREAM_KEY: UPSTREAM_KEY,
    CLUSTER_DATABASE_URL: options.databaseUrl
  }
  const started = await Promise.allSettled(
    Array.from({ length: options.instances }, () =>
      Proxy.start({ config: config(upstream.url, options.holdTtlSeconds), env, timeoutMs: 60_000 })
    )
  )
  const proxies = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
  const stop = async () => {
    for (const proxy of proxies) {
      proxy.kill()
      Proxy.removeWorkDir(proxy.dir)
    }
    await upstream.close()
  }
  const failed = started.find((s) => s.status === "rejected")
  if (failed !== undefined) {
    await stop()
    throw failed.reason
  }
  const urlOf = (instance: number): string => {
    const proxy = proxies[instance % proxies.length]
    if (proxy === undefined) throw new Error("no proxy")
    return proxy.url
  }
  const post = (url: string, key: string, body: unknown, headers: Record<string, string>) =>
    fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
  const admin: Cluster["admin"] = async (path, body, instance = 0) =>
    body === undefined
      ? reply(
          await fetch(`${urlOf(instance)}${path}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })
        )
      : reply(await post(`${urlOf(instance)}${path}`, MASTER_KEY, body, {}))
  return {
    upstream,
    proxies,
    admin,
    generate: async (body, instance = 0) => {
      const generated = await admin("/key/generate", body, instance)
      const key = at(generated.json, "key")
      if (generated.status !== 200 || typeof key !== "string") throw new Error(`no key: ${generated.text}`)
      return key
    },
    chat: (instance, key, body, headers = {}) =>
      orUnreachable(async () =>
        reply(await post(`${urlOf(instance)}/v1/chat/completions`, key, body, headers))
      ),
    openStream: (instance, key, body, headers = {}) =>
      post(`${urlOf(instance)}/v1/chat/completions`, key, body, headers),
    stop
  }
}

/** What the database says about one scope (`team:ID`, `key:HASH`, ...). */
export interface ScopeLedger {
  /** Lifetime spend on the counter, nano-dollars. */
  readonly total: bigint
  readonly held: bigint
  readonly maxBudget: bigint | undefined
  /** The sum of the spend log rows of this team, nano-dollars (teams only). */
  readonly logged: bigint
  readonly rows: number
}

export interface Ledger {
  readonly teams: ReadonlyMap<string, ScopeLedger>
  readonly openHolds: number
  /** Every spend log row's request id, with how often it appears. */
  readonly requestIds: ReadonlyMap<string, number>
  /** Sum of `held` over every counter. */
  readonly heldAnywhere: bigint
  /** How many key counters' totals differ from the sum of their spend log rows. */
  readonly keyMismatches: number
}

const big = (value: unknown): bigint =>
  typeof value === "bigint"
    ? value
    : BigInt(typeof value === "number" || typeof value === "string" ? value : 0)

/** Reads the ledger of `database` on the shared server with raw SQL (no store code involved). */
export const readLedger = (databaseUrl: string): Promise<Ledger> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        const counters = yield* sql<{
          readonly scope_key: string
          readonly total: unknown
          readonly held: unknown
          readonly max_budget: unknown
        }>`SELECT scope_key, total, held, max_budget FROM tb_counters`
        const byTeam = yield* sql<{
          readonly team_id: string
          readonly cost: unknown
          readonly n: unknown
        }>`SELECT team_id, SUM(cost) AS cost, COUNT(*) AS n FROM tb_spend_logs GROUP BY team_id`
        const byKey = yield* sql<{
          readonly key_hash: string
          readonly cost: unknown
        }>`SELECT key_hash, SUM(cost) AS cost FROM tb_spend_logs GROUP BY key_hash`
        const ids = yield* sql<{
          readonly request_id: string
          readonly n: unknown
        }>`SELECT request_id, COUNT(*) AS n FROM tb_spend_logs GROUP BY request_id`
        const open = yield* sql<{
          readonly n: unknown
        }>`SELECT COUNT(*) AS n FROM tb_holds WHERE state = 'open'`
        const logged = new Map(byTeam.map((row) => [row.team_id, row]))
        const keyLogged = new Map(byKey.map((row) => [row.key_hash, big(row.cost)]))
        const teams = new Map<string, ScopeLedger>()
        let keyMismatches = 0
        for (const row of counters) {
          if (row.scope_key.startsWith("team:")) {
            const id = row.scope_key.slice("team:".length)
            teams.set(id, {
              total: big(row.total),
              held: big(row.held),
              maxBudget: row.max_budget === null ? undefined : big(row.max_budget),
              logged: big(logged.get(id)?.cost),
              rows: Number(logged.get(id)?.n ?? 0)
            })
          }
          if (row.scope_key.startsWith("key:")) {
            const hash = row.scope_key.slice("key:".length)
            if (big(row.total) !== (keyLogged.get(hash) ?? 0n)) keyMismatches++
          }
        }
        return {
          teams,
          openHolds: Number(open[0]?.n ?? 0),
          requestIds: new Map(ids.map((row) => [row.request_id, Number(row.n)])),
          heldAnywhere: counters.reduce((sum, row) => sum + big(row.held), 0n),
          keyMismatches
        }
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 1 })))
    )
  )

/** The SPEC 9 body of a 503 for an unreachable store. */
export const isStoreUnavailable = (answer: Reply): boolean =>
  answer.status === 503 &&
  at(answer.json, "error", "type") === "service_unavailable" &&
  at(answer.json, "error", "code") === "store_unavailable" &&
  typeof at(answer.json, "error", "message") === "string"
