import { once } from "node:events"
import { createServer } from "node:http"
import { Redacted } from "effect"
import { BudgetWebhook } from "teambudget"
import { createTeamBudget } from "teambudget/promise"

export const main = async () => {
  const secret = "whsec_example"
  // A receiver: checks the signature over the raw body, answers 2xx, keeps one copy per event id.
  const delivered = new Map<string, unknown>()
  const receiver = createServer((req, res) => {
    let body = ""
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
    req.on("end", () => {
      const timestamp = req.headers["x-teambudget-timestamp"]?.toString()
      const signature = req.headers["x-teambudget-signature"]?.toString()
      if (!BudgetWebhook.verifySignature(secret, timestamp, body, signature)) return res.writeHead(401).end()
      delivered.set(req.headers["x-teambudget-event-id"]?.toString() ?? "", JSON.parse(body))
      res.writeHead(204).end()
      receiver.emit("delivered")
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
  const address = receiver.address()
  const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/hook`

  const budget = await createTeamBudget({ webhook: { url, secret: Redacted.make(secret) } })
  try {
    const seen: Array<string> = []
    budget.onBudgetEvent((event) => {
      seen.push(`${event._tag} ${event.scope.kind}:${event.scope.id}`)
    })
    await budget.admin.teamNew({ team_id: "research", team_alias: "research", max_budget: 0.0002 })
    const { key } = await budget.admin.keyGenerate({ team_id: "research" })
    const request = { apiKey: key, model: "gpt-4o-mini", promptTokens: 25, maxOutputTokens: 200 }
    const admission = await budget.authorize(request)
    await budget.settle(admission, { promptTokens: 25, completionTokens: 180 }) // 56 % of the budget

    await once(receiver, "delivered")
    return { seen, webhook: [...delivered.values()] }
  } finally {
    await budget.close()
    receiver.close()
  }
}
