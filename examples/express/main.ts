/**
 * An Express app that calls an LLM on its users' behalf: its own route, `POST /chat`,
 * runs behind teambudget's guard (every call authorised, held and charged to the
 * caller's key, member, team and organization), and the management API is mounted
 * under `/admin`.
 *
 *   OPENAI_API_KEY=sk-... MASTER_KEY=sk-admin-... node --import tsx examples/express/main.ts
 */
import { randomBytes } from "node:crypto"
import { Redacted } from "effect"
import express from "express"
import { llmGuard, managementRouter } from "../../src/adapters/express.js"
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

const app = express()
app.use("/admin", managementRouter(api))
app.post("/chat", llmGuard(guard, callModel))
app.get("/", (_req, res) => {
  res.send("POST /chat with an OpenAI chat body and a teambudget key; manage keys under /admin.")
})

const server = app.listen(Number(process.env["PORT"] ?? 3000), "127.0.0.1", () => {
  const address = server.address()
  console.log(
    `listening on http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : ""}`
  )
})
process.once("SIGTERM", () => server.close(() => void budget.close()))
