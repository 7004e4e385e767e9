/**
 * A Hono app that calls an LLM on its users' behalf: its own route, `POST /chat`,
 * runs behind teambudget's guard middleware (the handler after it calls the model;
 * `c.get("teambudget")` tells who is calling), and the management API is mounted
 * under `/admin`.
 *
 *   OPENAI_API_KEY=sk-... MASTER_KEY=sk-admin-... node --import tsx examples/hono/main.ts
 */
import { randomBytes } from "node:crypto"
import { serve } from "@hono/node-server"
import { Redacted } from "effect"
import { Hono } from "hono"
import { llmGuard, managementApp, type TeamBudgetEnv } from "../../src/adapters/hono.js"
import { LlmGuard, ManagementApi } from "../../src/index.js"
import { createTeamBudget } from "../../src/promise.js"

const upstream = process.env["OPENAI_BASE_URL"] ?? "https://api.openai.com/v1"
const masterKey = process.env["MASTER_KEY"] ?? `sk-admin-${randomBytes(18).toString("base64url")}`
if (process.env["MASTER_KEY"] === undefined) console.log(`export MASTER_KEY=${masterKey}`)

// `memory:` forgets on restart; `sqlite:PATH` or a `postgres://` URL keep budgets.
const budget = await createTeamBudget({ databaseUrl: process.env["DATABASE_URL"] ?? "memory:" })
const api = ManagementApi.toWebHandler(budget.runtime, { masterKey: Redacted.make(masterKey) })
const guard = LlmGuard.toWebHandler(budget.runtime)

const app = new Hono<TeamBudgetEnv>()
app.route("/admin", managementApp(api))
// `c.req.raw` is the request as the provider should get it: without the caller's
// key, asking a stream for its usage. The provider's key is added here.
app.post("/chat", llmGuard(guard), async (c) =>
  fetch(`${upstream}/chat/completions`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${process.env["OPENAI_API_KEY"] ?? ""}`,
      "content-type": "application/json",
      // Ties the provider's logs to this request's spend log row.
      "x-request-id": c.get("teambudget").requestId
    },
    body: await c.req.raw.text(),
    signal: c.req.raw.signal
  })
)
app.get("/", (c) =>
  c.text("POST /chat with an OpenAI chat body and a teambudget key; manage keys under /admin.")
)

const server = serve(
  { fetch: app.fetch, port: Number(process.env["PORT"] ?? 3000), hostname: "127.0.0.1" },
  (info) => console.log(`listening on http://127.0.0.1:${info.port}`)
)
process.once("SIGTERM", () => server.close(() => void budget.close()))
