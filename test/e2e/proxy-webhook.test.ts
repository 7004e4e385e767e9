/**
 * The proxy example posts budget events to the webhook its config file names: a team
 * running down its budget through the mock model reaches 50 %, and the receiver gets
 * that event once, signed with the configured secret.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { BudgetWebhook } from "../../src/index.js"
import * as Proxy from "../support/proxyProcess.js"
import { type Receiver, startReceiver } from "../support/webhookReceiver.js"

const MASTER_KEY = "sk-e2e-master-webhook-51c0"
const SECRET = "whsec-e2e-9d24"

const config = `
general_settings:
  master_key: os.environ/E2E_MASTER_KEY
  budget_webhook_url: os.environ/E2E_HOOK_URL
  budget_webhook_secret: os.environ/E2E_HOOK_SECRET
`

describe("proxy example: budget webhook", () => {
  let receiver: Receiver
  let proxy: Proxy.ProxyProcess

  beforeAll(async () => {
    receiver = await startReceiver(() => ({ _tag: "ok" }))
    proxy = await Proxy.start({
      config,
      env: {
        E2E_MASTER_KEY: MASTER_KEY,
        E2E_HOOK_URL: receiver.url,
        E2E_HOOK_SECRET: SECRET,
        DATABASE_URL: "memory:"
      }
    })
  }, 60_000)

  afterAll(async () => {
    await proxy.stop()
    Proxy.removeWorkDir(proxy.dir)
    await receiver.close()
  })

  it("a team reaching 50 % of its budget is posted once, signed", async () => {
    const admin = (path: string, body: unknown) =>
      fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
    expect(
      (await admin("/team/new", { team_id: "hooked", team_alias: "hooked", max_budget: 0.0005 })).status
    ).toBe(200)
    const generated: unknown = await (await admin("/key/generate", { team_id: "hooked" })).json()
    const key = typeof generated === "object" && generated !== null && "key" in generated ? generated.key : ""
    // A few calls of the priced mock model pass 50 % of this budget.
    for (let i = 0; i < 20 && receiver.attempts.length === 0; i++) {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${String(key)}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "mock-gpt",
          max_tokens: 40,
          messages: [{ role: "user", content: "Hi" }]
        })
      })
      await response.arrayBuffer()
      if (response.status !== 200) break
    }
    const [first] = await receiver.delivered(1)
    if (first === undefined) return expect.unreachable("nothing delivered")
    expect(BudgetWebhook.verifySignature(SECRET, first.timestamp, first.body, first.signature)).toBe(true)
    const event: unknown = JSON.parse(first.body)
    expect(event).toMatchObject({
      type: "BudgetThresholdReached",
      percent: 50,
      scope: { kind: "team", id: "hooked" }
    })
    expect(receiver.attempts.filter((attempt) => attempt.eventId === first.eventId).length).toBe(1)
    expect(proxy.output.join("\n")).not.toContain(SECRET)
  }, 60_000)
})
