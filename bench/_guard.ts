import { Effect, ManagedRuntime } from "effect"
import { LlmGuard, TeamBudget, Operations, Principal } from "../src/index.js"
const runtime = ManagedRuntime.make(TeamBudget.layerMemory({ pricing: { catalogue: false, models: { m: { inputCostPerToken: 0.000001, outputCostPerToken: 0.000002 } } } }))
const team: any = await runtime.runPromise(Operations.invoke("team/new", Principal.master, { team_alias: "t", max_budget: 1000000 }))
const gen: any = await runtime.runPromise(Operations.invoke("key/generate", Principal.master, { team_id: team.team_id }))
const guard = LlmGuard.toWebHandler(runtime)
const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hello there" }], max_tokens: 50 })
const answer = JSON.stringify({ id: "x", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })
const once = async () => {
  const res = await guard(new Request("http://x/v1/chat/completions", { method: "POST", headers: { authorization: `Bearer ${gen.key}`, "content-type": "application/json" }, body }), async () => new Response(answer, { headers: { "content-type": "application/json" } }))
  await res.text()
  if (res.status !== 200) throw new Error(String(res.status))
}
const plain = async () => { const res = new Response(answer); await res.text() }
for (const [name, f] of [["plain", plain], ["guard", once]] as const) {
  for (let i = 0; i < 500; i++) await f()
  const n = 3000; const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) await f()
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / n; const c = process.cpuUsage(c0)
  console.log(name, "wall µs", wall.toFixed(1), "cpu µs", ((c.user + c.system) / n).toFixed(1))
}
await runtime.dispose()
