/**
 * A Fastify app that calls an LLM on its users' behalf: its own route, `POST /chat`,
 * runs behind teambudget's guard plugin, and the management API plugin is registered
 * under `/admin`. Both plugins are encapsulated: the app's other routes keep their
 * body parsers.
 *
 *   OPENAI_API_KEY=sk-... MASTER_KEY=sk-admin-... node --import tsx examples/fastify/main.ts
 */
import { randomBytes } from "node:crypto"
import { Redacted } from "effect"
import Fastify from "fastify"
import { llmGuardPlugin, managementPlugin } from "../../src/adapters/fastify.js"
import { LlmGuard, ManagementApi } from "../../src/index.js"
import { createTeamBudget } from "../../src/promise.js"

const upstream = process.env["OPENAI_BASE_URL"] ?? "https://api.openai.com/v1"
const masterKey = process.env["MASTER_KEY"] ?? `sk-admin-${randomBytes(18).toString("base64url")}`
if (process.env["MASTER_KEY"] === undefined) console.log(`export MASTER_KEY=${masterKey}`)

// `memory:` forgets on restart; `sqlite:PATH` or a `postgres://` URL keep budgets.
const budget = await createTeamBudget({ databaseUrl: process.env["DATABASE_URL"] ?? "memory:" })
const api = ManagementApi.toWebHandler(budget.runtime, { masterKey: Redacted.make(masterKey) })
const guard = LlmGuard.toWebHandler(budget.runtime)

// The guard hands over the request as the provider should get it: without the
// caller's key, asking a stream for its usage. The provider's key is added here.
const callModel: LlmGuard.Forward = async (request) =>
  fetch(`${upstream}/chat/completions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${process.env["OPENAI_API_KEY"] ?? ""}`,
      "content-type": "application/json"
    },
    body: await request.text(),
    signal: request.signal
  })

const app = Fastify()
await app.register(managementPlugin, { prefix: "/admin", api })
await app.register(llmGuardPlugin, { guard, forward: callModel, routes: ["/chat"] })
app.get(
  "/",
  async () => "POST /chat with an OpenAI chat body and a teambudget key; manage keys under /admin."
)
app.addHook("onClose", () => budget.close())

const url = await app.listen({ port: Number(process.env["PORT"] ?? 3000), host: "127.0.0.1" })
console.log(`listening on ${url}`)
process.once("SIGTERM", () => void app.close())
