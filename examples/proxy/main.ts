/**
 * `npm start`: the OpenAI-compatible proxy, built from the SDK's public exports.
 *
 *   npm start                          # offline: embedded store, mock model, generated master key
 *   npm start -- --config config.yaml  # LiteLLM-style model_list and general_settings
 *
 * SIGTERM (or SIGINT) drains: no new requests, the ones in flight finish and settle,
 * then the process exits 0.
 */
import { randomBytes } from "node:crypto"
import { Cause, Effect, Either, Exit, ManagedRuntime, Option, Redacted } from "effect"
import * as Config from "./config.js"
import * as Log from "./log.js"
import * as Server from "./server.js"
import * as Services from "./services.js"
import { makeHolds } from "./tracking.js"

/** How long a shutdown waits for requests in flight (a long stream included). */
const DRAIN_TIMEOUT_MS = Number(process.env["DRAIN_TIMEOUT_MS"] ?? 60_000)

const fail = (message: string): never => {
  console.error(`teambudget proxy: ${message}`)
  process.exit(1)
}

const loaded = await Effect.runPromise(Effect.either(Config.load(process.argv.slice(2), process.env)))
const config = Either.getOrElse(loaded, (error) => fail(`configuration: ${error.path} ${error.detail}`))

const generated = Option.isNone(config.masterKey)
const masterKey = Option.getOrElse(config.masterKey, () =>
  Redacted.make(`sk-master-${randomBytes(24).toString("base64url")}`)
)

const holds = makeHolds()
const runtime = ManagedRuntime.make(Services.layer(config, holds))
// Opens the store and runs its migrations now, so a bad DATABASE_URL stops start-up.
const opened = await runtime.runPromiseExit(Effect.void)
if (Exit.isFailure(opened)) {
  const reason = Option.match(Cause.failureOption(opened.cause), {
    onNone: () => "unexpected error",
    onSome: (error) => (error instanceof Error ? error.message : "unknown error")
  })
  fail(`the store could not be opened: ${reason}`)
}

const server = await Server.start({ config, runtime, masterKey, holds }).catch((error: unknown) =>
  fail(`cannot listen on ${config.host}:${config.port} (${error instanceof Error ? error.message : "error"})`)
)

console.log(`store: ${Config.describeStore(config.databaseUrl)}`)
if (Option.isSome(config.redis)) console.log(`rate limits: ${Config.describeStore(config.redis.value.url)}`)
console.log(`models: ${config.models.map((route) => route.name).join(", ")}`)
if (generated) {
  // The only line that ever shows the master key: it was made up just now.
  console.log("master key generated for this run (set MASTER_KEY to choose your own):")
  console.log(`export MASTER_KEY=${Redacted.value(masterKey)}`)
}
console.log(`teambudget proxy listening on ${server.url}`)

let stopping = false
const shutdown = async (signal: string) => {
  if (stopping) return
  stopping = true
  console.log(`${signal}: draining (no new requests; the ones in flight finish and settle)`)
  const drained = await server.drain(DRAIN_TIMEOUT_MS)
  await runtime.dispose()
  Log.flush()
  console.log(drained ? "drained; exiting" : "drain timed out; exiting with requests unfinished")
  process.exit(drained ? 0 : 1)
}
// `on`, not `once`: a second signal (npm forwarding the one its group got) must not kill
// the process half-way through draining.
process.on("SIGTERM", () => void shutdown("SIGTERM"))
process.on("SIGINT", () => void shutdown("SIGINT"))
