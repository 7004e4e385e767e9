/**
 * The fake provider of the proxy benchmark, in its own process: an OpenAI-compatible
 * chat completions endpoint that answers every POST with the same small completion,
 * after `LATENCY_MS` (default 0). Prints `READY <port>` when listening.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const latency = Number(process.env["LATENCY_MS"] ?? 0)
const reply = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "bench-upstream",
  choices: [{ index: 0, message: { role: "assistant", content: "A fox jumps." }, finish_reason: "stop" }],
  usage: { prompt_tokens: 14, completion_tokens: 4, total_tokens: 18 }
})

const server = createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) })
      res.end(reply)
    }
    if (latency > 0) setTimeout(answer, latency)
    else answer()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  console.log(
    `READY ${typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0}`
  )
})
