/**
 * Hostile input for the HTTP surface, and the checks every answer to it must pass.
 *
 * Bodies are written as raw text, so they can carry what `JSON.stringify` would never
 * produce: `__proto__` keys, duplicate keys, number literals beyond a double, nesting
 * thousands deep, text that is not JSON at all. Values mix huge and tiny numbers,
 * control characters, CR/LF, unpaired surrogates, right-to-left marks and SQL.
 */
import fc from "fast-check"
import { expect, it } from "vitest"
import { Api } from "../../src/index.js"

/** A deployment under attack: where it answers, and a full dump of what it stores. */
export interface Target {
  /** `http://127.0.0.1:port`. */
  readonly url: string
  /** Where the management API is mounted (`""` or `"/admin"`). */
  readonly adminBase: string
  readonly masterKey: string
  /** Every row of every table, as text. */
  readonly dump: () => Promise<string>
}

export interface HostileRequest {
  readonly method: "GET" | "POST"
  /** The path under the management API's base, or an LLM route. */
  readonly path: string
  readonly admin: boolean
  readonly query: string
  readonly body: string
  readonly auth: "master" | "none" | "bogus" | "key"
}

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const MANAGEMENT_FIELDS = [
  "team_id",
  "team_alias",
  "organization_id",
  "organization_alias",
  "max_budget",
  "soft_budget",
  "budget_duration",
  "tpm_limit",
  "rpm_limit",
  "max_parallel_requests",
  "models",
  "metadata",
  "member",
  "user_id",
  "user_email",
  "user_role",
  "role",
  "max_budget_in_team",
  "key",
  "keys",
  "key_alias",
  "duration",
  "team_ids",
  "blocked",
  "start_date",
  "end_date",
  "budget_id"
]

const LLM_FIELDS = [
  "model",
  "messages",
  "prompt",
  "input",
  "max_tokens",
  "max_completion_tokens",
  "stream",
  "stream_options",
  "n",
  "user",
  "tools",
  "functions",
  "tool_choice",
  "temperature"
]

const POLLUTING = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"]

const NASTY = [
  "",
  " ",
  "\r\nx-injected: 1",
  "a\r\n\r\n<html>",
  "line\nbreak",
  "nul\u0000byte",
  "\u202eevil\u202c",
  "\ud800",
  "\udfff\ud800",
  "\ufeffbom",
  "💸🔑👩‍👩‍👧‍👦",
  "Ｆｕｌｌｗｉｄｔｈ",
  "'; DROP TABLE tb_teams; --",
  '" OR 1=1 --',
  "${process.exit()}",
  "../../etc/passwd",
  "__proto__",
  "NaN",
  "Infinity",
  "-0",
  "1e999",
  "30d\r\n",
  "1mo\u0000",
  "sk-",
  "sk-...abcd"
]

const NUMBER_TEXTS = [
  "1e999",
  "-1e999",
  "1".repeat(400),
  "-0",
  "0.000000000000000000000000000001",
  "9007199254740993",
  "-9007199254740993",
  "1E+2",
  "2.5e-324"
]

/** A JSON text of any string (JSON.stringify keeps lone surrogates as escapes). */
const stringText = fc
  .oneof(
    { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) },
    { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 1, arbitrary: fc.constantFrom(300, 70_000).map((n) => "x".repeat(n)) }
  )
  .map((text) => JSON.stringify(text))

const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
  fc.integer().map(String),
  fc.constantFrom(...NUMBER_TEXTS),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, 5e-324, 1e21, 0.1, 2_147_483_648).map(String)
)

/** Values at the edges of what is valid: zero, the smallest and largest amounts, unicode text. */
const edgeText = fc.oneof(
  fc
    .constantFrom<unknown>(
      0,
      1,
      0.5,
      1e-9,
      1e9,
      2_147_483_647,
      null,
      true,
      false,
      [],
      {},
      "30d",
      "1mo",
      "admin",
      "user"
    )
    .map((value) => JSON.stringify(value)),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).map((text) => JSON.stringify(text)),
  fc.array(fc.constantFrom("small", "big", "💸"), { maxLength: 3 }).map((models) => JSON.stringify(models))
)

/** A JSON object as text, from entries: keys may repeat and may be `__proto__`. */
const objectOf = (entries: ReadonlyArray<readonly [string, string]>): string =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(",")}}`

const valueText = (keys: ReadonlyArray<string>): fc.Arbitrary<string> => {
  const key = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...keys) },
    { weight: 2, arbitrary: fc.constantFrom(...POLLUTING) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }
  )
  const { value } = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      stringText,
      numberText,
      fc.constantFrom("true", "false", "null"),
      fc.array(tie("value"), { maxLength: 4 }).map((items) => `[${items.join(",")}]`),
      fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map(objectOf)
    )
  }))
  return value
}

/** Nesting `depth` deep, inside an otherwise plausible body. */
const deep = (field: string, prefix: ReadonlyArray<readonly [string, string]>) =>
  fc
    .constantFrom(40, 5_000, 60_000)
    .map((depth) => objectOf([...prefix, [field, `${'{"a":['.repeat(depth)}1${"]}".repeat(depth)}`]]))

/** A body: an object of known and polluting keys with hostile values, or text that is not a plain object. */
export const bodyText = (
  keys: ReadonlyArray<string>,
  prefix: ReadonlyArray<readonly [string, string]> = []
) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .array(
          fc.tuple(
            fc.oneof(
              { weight: 4, arbitrary: fc.constantFrom(...keys) },
              { weight: 1, arbitrary: fc.constantFrom(...POLLUTING) }
            ),
            fc.oneof(valueText(keys), edgeText)
          ),
          { maxLength: 6 }
        )
        .map((entries) => objectOf([...prefix, ...entries]))
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        "null",
        "[]",
        '"text"',
        "1e999",
        "{",
        '{"a":1,}',
        "\ufeff{}",
        '{"__proto__":{"blocked":true,"max_budget":0}}',
        '{"constructor":{"prototype":{"polluted":true}}}'
      )
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(200, 5_000, 200_000).map((depth) => "[".repeat(depth) + "]".repeat(depth))
    },
    { weight: 1, arbitrary: fc.constantFrom(...keys).chain((field) => deep(field, prefix)) }
  )

/** A query string of hostile parameters for a GET route. */
const queryText = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...MANAGEMENT_FIELDS),
        fc.constantFrom(...POLLUTING),
        fc.string({ maxLength: 6 })
      ),
      fc.oneof(
        fc.constantFrom(...NASTY),
        fc.string({ unit: "binary", maxLength: 20 }),
        fc.constantFrom(...NUMBER_TEXTS)
      )
    ),
    { maxLength: 4 }
  )
  .map((pairs) => new URLSearchParams(pairs.map(([k, v]) => [k, v])).toString())

const auth = fc.constantFrom<HostileRequest["auth"]>("master", "master", "master", "none", "bogus", "key")

/** Where a key is written in a request; `send` puts the key it is given there. */
export const KEY_PLACEHOLDER = "sk-placeholder-of-the-test-key"

/**
 * The fields that get a request past "which entity?" to the parts worth attacking,
 * naming the entities a test sets up: team `t`, user `u`, organization `o`, customer
 * `c`, and the key it passes to `send`.
 */
const ENTITY: Record<string, ReadonlyArray<readonly [string, unknown]>> = {
  "/team/new": [["team_alias", "x"]],
  "/team/update": [["team_id", "t"]],
  "/team/member_add": [
    ["team_id", "t"],
    ["member", { user_id: "u2" }]
  ],
  "/team/member_update": [
    ["team_id", "t"],
    ["user_id", "u"]
  ],
  "/team/member_delete": [
    ["team_id", "t"],
    ["user_id", "u3"]
  ],
  "/team/info": [["team_id", "t"]],
  "/team/delete": [["team_ids", ["gone"]]],
  "/key/update": [["key", KEY_PLACEHOLDER]],
  "/key/info": [["key", KEY_PLACEHOLDER]],
  "/key/block": [["key", KEY_PLACEHOLDER]],
  "/key/unblock": [["key", KEY_PLACEHOLDER]],
  "/key/delete": [["keys", ["sk-never-issued"]]],
  "/user/update": [["user_id", "u"]],
  "/user/info": [["user_id", "u"]],
  "/organization/new": [["organization_alias", "o2"]],
  "/organization/update": [["organization_id", "o"]],
  "/organization/info": [["organization_id", "o"]],
  "/customer/new": [["user_id", "c2"]],
  "/customer/update": [["user_id", "c"]],
  "/customer/info": [["user_id", "c"]]
}

const ROUTES = Api.Routes.routes.map((route) => ({ method: route.method, path: route.path }))

/** Any management endpoint (and a few paths that are none), with hostile input. */
export const managementRequest: fc.Arbitrary<HostileRequest> = fc
  .tuple(
    fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(...ROUTES) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          { method: "POST" as const, path: "/team/__proto__" },
          { method: "GET" as const, path: "/team/new" },
          { method: "POST" as const, path: "/constructor" }
        )
      }
    ),
    fc.boolean(),
    auth
  )
  .chain(([route, withEntity, who]) => {
    const entity = withEntity ? (ENTITY[route.path] ?? []) : []
    return fc
      .tuple(
        bodyText(
          MANAGEMENT_FIELDS,
          entity.map(([name, value]) => [name, JSON.stringify(value)])
        ),
        queryText.map((query) => {
          const params = new URLSearchParams(entity.map(([name, value]) => [name, String(value)]))
          return [params.toString(), query].filter((part) => part !== "").join("&")
        })
      )
      .map(([body, query]) => ({ ...route, admin: true, body, query, auth: who }))
  })

const PLAUSIBLE: ReadonlyArray<readonly [string, string]> = [
  ["model", '"small"'],
  ["messages", '[{"role":"user","content":"hi"}]'],
  ["max_tokens", "20"]
]

/** An LLM route with a hostile body, most often from a valid key and a plausible start. */
export const llmRequest: fc.Arbitrary<HostileRequest> = fc
  .tuple(
    fc.constantFrom("/v1/chat/completions", "/v1/completions", "/v1/embeddings"),
    fc.oneof(bodyText(LLM_FIELDS, PLAUSIBLE), bodyText(LLM_FIELDS)),
    fc.constantFrom<HostileRequest["auth"]>("key", "key", "key", "none", "bogus", "master")
  )
  .map(([path, body, who]) => ({ method: "POST" as const, path, admin: false, query: "", body, auth: who }))

/** Sends `request`, authorised as it says, and reads the whole answer. */
export const send = async (target: Target, request: HostileRequest, key: string): Promise<Reply> => {
  const token = { master: target.masterKey, none: undefined, bogus: "sk-bogus-0000000000", key }[request.auth]
  const path = request.admin ? `${target.adminBase}${request.path}` : request.path
  const query = request.query.replaceAll(KEY_PLACEHOLDER, encodeURIComponent(key))
  const response = await fetch(`${target.url}${path}${query === "" ? "" : `?${query}`}`, {
    method: request.method,
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
    },
    ...(request.method === "POST" ? { body: request.body.replaceAll(KEY_PLACEHOLDER, key) } : {})
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * What every answer must be: never a server error other than `CorruptRecord`; a
 * refusal carries the SPEC 9 body.
 */
export const expectSound = (reply: Reply, request: HostileRequest): void => {
  const json = parse(reply.text)
  const code =
    typeof json === "object" && json !== null
      ? Reflect.get(Reflect.get(json, "error") ?? {}, "code")
      : undefined
  const context = `${request.method} ${request.path} ${request.body.slice(0, 300)} -> ${reply.status} ${reply.text.slice(0, 300)}`
  expect(reply.status < 500 || code === "corrupt_record", context).toBe(true)
  if (reply.status >= 400) {
    expect(json, context).toMatchObject({
      error: { message: expect.any(String), type: expect.any(String), code: expect.any(String) }
    })
  }
}

/** Nothing a request can send reaches `Object.prototype` of the process that parsed it. */
export const expectUnpolluted = (): void => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(
    [
      "__defineGetter__",
      "__defineSetter__",
      "__lookupGetter__",
      "__lookupSetter__",
      "__proto__",
      "constructor",
      "hasOwnProperty",
      "isPrototypeOf",
      "propertyIsEnumerable",
      "toLocaleString",
      "toString",
      "valueOf"
    ].sort()
  )
  const probe: Record<string, unknown> = {}
  for (const name of ["blocked", "max_budget", "polluted", "isAdmin", "role"])
    expect(probe[name]).toBeUndefined()
}

/**
 * The store once nothing more is being written to it. Through the Node bridge a stream
 * is charged just after its last byte went out, so the answer before may still be
 * settling when the next request starts.
 */
const settledDump = async (target: Target): Promise<string> => {
  let last = await target.dump()
  for (let check = 0; check < 50; check++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const next = await target.dump()
    if (next === last) return next
    last = next
  }
  return last
}

/**
 * The property: whatever arrives, the answer is sound, and a refusal (4xx) leaves the
 * store exactly as it was, row for row.
 */
export const refusalsWriteNothing = (
  target: Target,
  requests: fc.Arbitrary<HostileRequest>,
  key: string,
  numRuns: number
) => {
  let answered = false
  return fc.assert(
    fc.asyncProperty(requests, async (request) => {
      const before = answered ? await settledDump(target) : await target.dump()
      const reply = await send(target, request, key)
      answered = reply.status < 300
      expectSound(reply, request)
      if (reply.status >= 400 && reply.status < 500) {
        const after = await target.dump()
        expect(
          after === before,
          `a ${reply.status} changed the store: ${request.method} ${request.path}`
        ).toBe(true)
      }
    }),
    { numRuns, endOnFailure: true }
  )
}

/**
 * Marks each side of a header breaker. Random text alone can match a header by chance
 * ("appl" is in "application/json"); a piece that holds the marker cannot, so finding
 * one in a header means the text reached it.
 */
const marker = "Qz~Xj"

/**
 * Text for key aliases, team aliases and metadata that tries to break into a header:
 * CR/LF, a forged header line, and unicode around them.
 */
export const headerBreaker = fc
  .tuple(
    fc.string({ unit: "grapheme", maxLength: 8 }),
    fc.constantFrom("\r\n", "\n", "\r", "\r\nx-injected: yes\r\n", "\r\n\r\n", "\u2028", "\u0085"),
    fc.string({ unit: "grapheme", maxLength: 8 }),
    fc.constantFrom("", "x-injected: yes", "💸", "\u202e")
  )
  .map(([a, breaker, b, c]) => `${a}${marker}${breaker}${marker}${b}${c}`)

/** No header of `reply` was written from `text`, nor forged by it. */
export const expectNotInHeaders = (reply: Reply, text: string): void => {
  expect(reply.headers.get("x-injected")).toBeNull()
  const pieces = text.split(/[\r\n\u2028\u0085]+/).filter((piece) => piece.includes(marker))
  reply.headers.forEach((value, name) => {
    expect(/[\r\n]/.test(value), name).toBe(false)
    for (const piece of pieces) expect(value.includes(piece.trim()), `${name}: ${value}`).toBe(false)
  })
}

const json = (target: Target, path: string, body: unknown, token: string) =>
  fetch(`${target.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  }).then(async (response): Promise<Reply> => ({
    status: response.status,
    headers: response.headers,
    text: await response.text()
  }))

/**
 * The property: a team alias, key alias or metadata made to break headers is stored
 * (or refused) and then never shows in, or forges, a response header: not on the
 * management answers, not on an admitted call or stream, not on a 402 that names the key.
 */
export const headersStayClean = (target: Target, numRuns: number) =>
  fc.assert(
    fc.asyncProperty(headerBreaker, async (text) => {
      const request: HostileRequest = {
        method: "POST",
        path: "/key/generate",
        admin: true,
        query: "",
        body: text,
        auth: "master"
      }
      const checked = (reply: Reply) => {
        expectSound(reply, request)
        expectNotInHeaders(reply, text)
        return reply
      }
      const admin = (path: string, body: unknown) =>
        json(target, `${target.adminBase}${path}`, body, target.masterKey).then(checked)
      const team = await admin("/team/new", { team_alias: text, metadata: { note: text, [text]: text } })
      const teamId = team.status === 200 ? Reflect.get(JSON.parse(team.text), "team_id") : undefined
      for (const maxBudget of [5, 0.000001]) {
        const generated = await admin("/key/generate", {
          ...(typeof teamId === "string" ? { team_id: teamId } : {}),
          key_alias: text,
          max_budget: maxBudget,
          metadata: { [text]: text }
        })
        if (generated.status !== 200) continue
        const key: unknown = Reflect.get(JSON.parse(generated.text), "key")
        if (typeof key !== "string") continue
        for (const stream of [false, true]) {
          const call = checked(
            await json(
              target,
              "/v1/chat/completions",
              {
                model: "small",
                messages: [{ role: "user", content: text }],
                max_tokens: 20,
                stream,
                user: text
              },
              key
            )
          )
          expect([200, 400, 402]).toContain(call.status)
        }
        checked(
          await fetch(`${target.url}${target.adminBase}/key/info?key=${encodeURIComponent(key)}`, {
            headers: { authorization: `Bearer ${target.masterKey}` }
          }).then(async (r): Promise<Reply> => ({
            status: r.status,
            headers: r.headers,
            text: await r.text()
          }))
        )
      }
    }),
    { numRuns, endOnFailure: true }
  )

/**
 * The entities the requests name (team `t` in organization `o`, its admins `u` and
 * `u3`, customer `c`) and two keys: one for LLM calls, one the management requests
 * may change, block or delete.
 */
export const setUp = async (
  target: Target
): Promise<{ readonly key: string; readonly managedKey: string }> => {
  const admin = async (path: string, body: unknown): Promise<unknown> => {
    const reply = await json(target, `${target.adminBase}${path}`, body, target.masterKey)
    if (reply.status !== 200) throw new Error(`${path}: ${reply.text}`)
    return JSON.parse(reply.text)
  }
  await admin("/organization/new", { organization_id: "o", organization_alias: "O", max_budget: 1000 })
  await admin("/team/new", { team_id: "t", team_alias: "T", organization_id: "o", max_budget: 100 })
  for (const user of ["u", "u3"]) {
    await admin("/user/new", { user_id: user })
    await admin("/team/member_add", { team_id: "t", member: { user_id: user, role: "admin" } })
  }
  await admin("/customer/new", { user_id: "c", max_budget: 10 })
  // The LLM property's key is on a team of its own, with no user: nothing the management
  // property changes (a token limit on team "t", say) applies to it.
  await admin("/team/new", { team_id: "llm", team_alias: "LLM", max_budget: 100 })
  const issue = async (body: unknown) => {
    const generated = await admin("/key/generate", body)
    const key: unknown =
      typeof generated === "object" && generated !== null ? Reflect.get(generated, "key") : undefined
    if (typeof key !== "string") throw new Error("no key")
    return key
  }
  return {
    key: await issue({ team_id: "llm", max_budget: 50 }),
    managedKey: await issue({ team_id: "t", user_id: "u3", key_alias: "managed" })
  }
}

/** How many cases each property runs. */
export interface Runs {
  readonly management: number
  readonly llm: number
  readonly headers: number
}

/** The three properties as tests of the enclosing `describe`, against a target set up in its `beforeAll`. */
export const hostileSuite = (
  deployment: () => { readonly target: Target; readonly key: string; readonly managedKey: string },
  runs: Runs
): void => {
  it("every management endpoint: never a 500, a refusal writes nothing", () => {
    const { target, managedKey } = deployment()
    return refusalsWriteNothing(target, managementRequest, managedKey, runs.management)
  }, 60_000)
  it("every LLM route: never a 500, a refusal writes nothing", () => {
    const { target, key } = deployment()
    return refusalsWriteNothing(target, llmRequest, key, runs.llm)
  }, 60_000)
  it(
    "aliases and metadata made of CR/LF and unicode never reach a header",
    () => headersStayClean(deployment().target, runs.headers),
    60_000
  )
}
