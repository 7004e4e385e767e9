/**
 * The proxy's configuration: a LiteLLM-style `config.yaml` subset (SPEC 11.3) and the
 * environment. Values written `os.environ/NAME` are read from the environment, so
 * secrets stay out of the file.
 *
 * Precedence: a value in the file wins; otherwise `MASTER_KEY`, `DATABASE_URL`,
 * `REDIS_URL` and `PORT` from the environment; otherwise the offline defaults (embedded
 * store under `./.teambudget/`, rate-limit counters in it too, the built-in mock model, a
 * generated master key).
 */
import { readFile } from "node:fs/promises"
import { Effect, Option, ParseResult, Redacted, Schema } from "effect"
import { parse } from "yaml"
import { InvalidRequest, type Pricing } from "../../src/index.js"

/** The `litellm_params.model` that selects the built-in mock model. */
export const MOCK_MODEL = "teambudget/mock"

/** The model served when no configuration names any. */
export const DEFAULT_MOCK_NAME = "mock-gpt"

export const DEFAULT_PORT = 4000
export const DEFAULT_DATABASE_URL = "sqlite:.teambudget/teambudget.db"
const DEFAULT_API_BASE = "https://api.openai.com/v1"
/** `litellm_params.timeout` when none is given: ten minutes, as OpenAI's own clients wait. */
export const DEFAULT_TIMEOUT_SECONDS = 600

/** Where a model's requests go. */
export type Target =
  | { readonly _tag: "Mock" }
  | {
      readonly _tag: "Upstream"
      /** The model name the upstream knows (the provider prefix removed). */
      readonly model: string
      /** An OpenAI-compatible base URL, such as `https://api.openai.com/v1`. */
      readonly apiBase: string
      readonly apiKey: Option.Option<Redacted.Redacted<string>>
      /** How long the upstream may stay silent (before answering, or mid-answer) before the call fails. */
      readonly timeoutMs: number
    }

/** One `model_list` entry: the name clients ask for, where it goes, what it costs. */
export interface ModelRoute {
  readonly name: string
  readonly target: Target
  /** The upstream model name pricing falls back to when no cost is configured. */
  readonly priceAs: string
  readonly price: Option.Option<Pricing.ModelPriceConfig>
}

export interface ProxyConfig {
  readonly port: number
  readonly host: string
  readonly masterKey: Option.Option<Redacted.Redacted<string>>
  /** Kept redacted: a PostgreSQL URL may carry a password. */
  readonly databaseUrl: Redacted.Redacted<string>
  /**
   * Where the rate-limit counters live instead of the store: a Redis server, under a
   * key prefix. Redacted like the store's URL; none: the store keeps them.
   */
  readonly redis: Option.Option<{ readonly url: Redacted.Redacted<string>; readonly prefix?: string }>
  /** How long a hold lives before its money goes back; none: the store's default (15 minutes). */
  readonly holdTtlSeconds: Option.Option<number>
  readonly models: ReadonlyArray<ModelRoute>
  /** Where budget events are posted, signed with the secret; none: no webhook. */
  readonly webhook: Option.Option<{ readonly url: string; readonly secret: Redacted.Redacted<string> }>
}

/** The default mock model: priced like a small hosted model, so budgets visibly run down. */
export const defaultMock: ModelRoute = {
  name: DEFAULT_MOCK_NAME,
  target: { _tag: "Mock" },
  priceAs: DEFAULT_MOCK_NAME,
  price: Option.some({ inputCostPerToken: 0.000001, outputCostPerToken: 0.000002, maxOutputTokens: 1024 })
}

const Cost = Schema.Number.pipe(
  Schema.finite({ message: () => "must be a finite number" }),
  Schema.nonNegative({ message: () => "must not be negative" })
)

const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))

const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))

const ModelEntry = Schema.Struct({
  model_name: NonEmpty,
  litellm_params: Schema.Struct({
    model: NonEmpty,
    api_base: Schema.optional(NonEmpty),
    api_key: Schema.optional(Schema.String),
    input_cost_per_token: Schema.optional(Cost),
    output_cost_per_token: Schema.optional(Cost),
    timeout: Schema.optional(
      Schema.Number.pipe(
        Schema.finite({ message: () => "must be a number of seconds" }),
        Schema.positive({ message: () => "must be a positive number of seconds" })
      )
    ),
    max_tokens: Schema.optional(PositiveInt)
  })
})

// Keys outside the subset (router_settings, litellm_settings, ...) are ignored, so an
// existing LiteLLM file loads as it is.
const ConfigFile = Schema.Struct({
  model_list: Schema.optional(Schema.NullOr(Schema.Array(ModelEntry))),
  general_settings: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        master_key: Schema.optional(NonEmpty),
        database_url: Schema.optional(NonEmpty),
        redis_url: Schema.optional(NonEmpty),
        redis_prefix: Schema.optional(NonEmpty),
        hold_ttl_seconds: Schema.optional(PositiveInt),
        budget_webhook_url: Schema.optional(NonEmpty),
        budget_webhook_secret: Schema.optional(NonEmpty)
      })
    )
  )
})
type ConfigFile = typeof ConfigFile.Type

const ENV_REFERENCE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Replaces every `os.environ/NAME` string with the variable's value. An unset variable
 * is an error naming the field and the variable, never a value.
 */
const resolveEnv = (
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: ReadonlyArray<string>
): Effect.Effect<unknown, InvalidRequest> => {
  if (typeof value === "string") {
    const match = ENV_REFERENCE.exec(value)
    if (match === null) return Effect.succeed(value)
    const name = match[1] ?? ""
    const resolved = env[name]
    return resolved === undefined || resolved === ""
      ? Effect.fail(
          new InvalidRequest({
            path: path.join("."),
            detail: `refers to the environment variable ${name}, which is not set`
          })
        )
      : Effect.succeed(resolved)
  }
  if (Array.isArray(value))
    return Effect.forEach(value, (item, i) => resolveEnv(item, env, [...path, String(i)]))
  if (isRecord(value)) {
    return Effect.map(
      Effect.forEach(Object.entries(value), ([key, item]) =>
        Effect.map(resolveEnv(item, env, [...path, key]), (resolved) => [key, resolved] as const)
      ),
      Object.fromEntries
    )
  }
  return Effect.succeed(value)
}

const decodeFile = (raw: unknown): Effect.Effect<ConfigFile, InvalidRequest> =>
  Schema.decodeUnknown(ConfigFile)(raw).pipe(
    Effect.mapError((error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return new InvalidRequest({
        path: (issue?.path ?? []).map(String).join("."),
        detail: issue?.message ?? "is invalid"
      })
    })
  )

// `openai/gpt-4o-mini` → `gpt-4o-mini`: every upstream here speaks the OpenAI API.
const withoutProvider = (model: string): string => {
  const slash = model.indexOf("/")
  return slash > 0 ? model.slice(slash + 1) : model
}

const routeOf = (item: typeof ModelEntry.Type, index: number): Effect.Effect<ModelRoute, InvalidRequest> => {
  const params = item.litellm_params
  const path = `model_list.${index}.litellm_params`
  const input = params.input_cost_per_token
  const output = params.output_cost_per_token
  if ((input === undefined) !== (output === undefined)) {
    return Effect.fail(
      new InvalidRequest({
        path: `${path}.${input === undefined ? "input" : "output"}_cost_per_token`,
        detail: "must be given together with the other cost per token"
      })
    )
  }
  const price: Option.Option<Pricing.ModelPriceConfig> =
    input !== undefined && output !== undefined
      ? Option.some({
          inputCostPerToken: input,
          outputCostPerToken: output,
          ...(params.max_tokens === undefined ? {} : { maxOutputTokens: params.max_tokens })
        })
      : Option.none()
  const target: Target =
    params.model === MOCK_MODEL
      ? { _tag: "Mock" }
      : {
          _tag: "Upstream",
          model: withoutProvider(params.model),
          apiBase: (params.api_base ?? DEFAULT_API_BASE).replace(/\/+$/, ""),
          apiKey: Option.map(Option.fromNullable(params.api_key), Redacted.make),
          timeoutMs: Math.ceil((params.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000)
        }
  return Effect.succeed({
    name: item.model_name,
    target,
    priceAs: target._tag === "Upstream" ? target.model : item.model_name,
    price
  })
}

const routesOf = (file: ConfigFile): Effect.Effect<ReadonlyArray<ModelRoute>, InvalidRequest> => {
  const list = file.model_list ?? []
  if (list.length === 0) return Effect.succeed([defaultMock])
  const seen = new Set<string>()
  for (const [index, entry] of list.entries()) {
    if (seen.has(entry.model_name)) {
      return Effect.fail(
        new InvalidRequest({
          path: `model_list.${index}.model_name`,
          detail: `${entry.model_name} is listed twice (one upstream per model name)`
        })
      )
    }
    seen.add(entry.model_name)
  }
  return Effect.forEach(list, routeOf)
}

const portOf = (raw: string | undefined): Effect.Effect<number, InvalidRequest> => {
  if (raw === undefined || raw === "") return Effect.succeed(DEFAULT_PORT)
  const port = Number(raw)
  return Number.isInteger(port) && port >= 0 && port <= 65535
    ? Effect.succeed(port)
    : Effect.fail(new InvalidRequest({ path: "PORT", detail: "must be a port number from 0 to 65535" }))
}

// A whole number of seconds: a hold shorter than the slowest answer would be reclaimed under it.
const holdTtlOf = (
  fromFile: number | undefined,
  raw: string | undefined
): Effect.Effect<Option.Option<number>, InvalidRequest> => {
  if (fromFile !== undefined) return Effect.succeed(Option.some(fromFile))
  if (raw === undefined || raw === "") return Effect.succeed(Option.none())
  const seconds = Number(raw)
  return Number.isSafeInteger(seconds) && seconds > 0
    ? Effect.succeed(Option.some(seconds))
    : Effect.fail(new InvalidRequest({ path: "HOLD_TTL_SECONDS", detail: "must be a positive integer" }))
}

// A webhook needs both: an unsigned body would be worthless to a receiver that checks.
const webhookOf = (
  url: string | undefined,
  secret: string | undefined
): Effect.Effect<ProxyConfig["webhook"], InvalidRequest> => {
  if (url === undefined || url === "") return Effect.succeed(Option.none())
  return secret === undefined || secret === ""
    ? Effect.fail(
        new InvalidRequest({
          path: "general_settings.budget_webhook_secret",
          detail: "must be set (or TEAMBUDGET_WEBHOOK_SECRET) when a budget webhook URL is"
        })
      )
    : Effect.succeed(Option.some({ url, secret: Redacted.make(secret) }))
}

// Checked here so a mistyped URL stops start-up with the setting's name, not a driver message.
const redisOf = (
  fromFile: { readonly url: string | undefined; readonly prefix: string | undefined },
  env: NodeJS.ProcessEnv
): Effect.Effect<ProxyConfig["redis"], InvalidRequest> => {
  const url = fromFile.url ?? env["REDIS_URL"]
  if (url === undefined || url === "") return Effect.succeed(Option.none())
  if (!/^rediss?:\/\//i.test(url)) {
    return Effect.fail(
      new InvalidRequest({
        path: fromFile.url === undefined ? "REDIS_URL" : "general_settings.redis_url",
        detail: "must be a redis:// or rediss:// URL"
      })
    )
  }
  const prefix = fromFile.prefix ?? env["REDIS_PREFIX"]
  return Effect.succeed(
    Option.some({ url: Redacted.make(url), ...(prefix === undefined || prefix === "" ? {} : { prefix }) })
  )
}

/** The `--config FILE` argument, if any. */
export const configPath = (
  argv: ReadonlyArray<string>
): Effect.Effect<Option.Option<string>, InvalidRequest> => {
  let path = Option.none<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "--config") {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--")) {
        return Effect.fail(new InvalidRequest({ path: "--config", detail: "needs a file name" }))
      }
      path = Option.some(next)
      i++
    } else if (arg.startsWith("--config=")) {
      path = Option.some(arg.slice("--config=".length))
    } else {
      return Effect.fail(new InvalidRequest({ path: arg, detail: "is not an option (use --config FILE)" }))
    }
  }
  return Effect.succeed(path)
}

const readConfigFile = (path: string): Effect.Effect<unknown, InvalidRequest> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: () => new InvalidRequest({ path: "--config", detail: `cannot read ${path}` })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: (): unknown => parse(text),
        catch: (error) =>
          new InvalidRequest({
            path: path,
            detail: `is not valid YAML (${error instanceof Error ? error.message.split("\n")[0] : "parse error"})`
          })
      })
    )
  )

/**
 * Reads the configuration from the command line, the file it names and the
 * environment.
 */
export const load = (
  argv: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv
): Effect.Effect<ProxyConfig, InvalidRequest> =>
  Effect.gen(function* () {
    const path = yield* configPath(argv)
    const raw = Option.isSome(path) ? yield* readConfigFile(path.value) : {}
    const file = yield* decodeFile(yield* resolveEnv(raw ?? {}, env, []))
    const settings = file.general_settings ?? {}
    const masterKey = settings.master_key ?? env["MASTER_KEY"]
    const databaseUrl = settings.database_url ?? env["DATABASE_URL"]
    return {
      port: yield* portOf(env["PORT"]),
      host: env["HOST"] ?? "127.0.0.1",
      masterKey:
        masterKey === undefined || masterKey === "" ? Option.none() : Option.some(Redacted.make(masterKey)),
      databaseUrl: Redacted.make(
        databaseUrl === undefined || databaseUrl === "" ? DEFAULT_DATABASE_URL : databaseUrl
      ),
      redis: yield* redisOf({ url: settings.redis_url, prefix: settings.redis_prefix }, env),
      holdTtlSeconds: yield* holdTtlOf(settings.hold_ttl_seconds, env["HOLD_TTL_SECONDS"]),
      models: yield* routesOf(file),
      webhook: yield* webhookOf(
        settings.budget_webhook_url ?? env["TEAMBUDGET_WEBHOOK_URL"],
        settings.budget_webhook_secret ?? env["TEAMBUDGET_WEBHOOK_SECRET"]
      )
    }
  })

/** What a store URL may show in a log: its scheme, and the path of a local file. */
export const describeStore = (url: Redacted.Redacted<string>): string => {
  const value = Redacted.value(url)
  if (/^sqlite:/i.test(value) || /^memory:/i.test(value)) return value
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(value)?.[0] ?? "unknown:"
  return `${scheme}//…`
}
