/**
 * The reference of the proxy benchmark, in its own process: the least an in-process
 * Node proxy does, with no budget at all. It reads each POST whole, parses it (a proxy
 * must read the model), forwards it on a kept-alive `node:http` connection to
 * `UPSTREAM_URL`, parses the answer (a proxy must read the usage) and writes it back.
 * What the real proxy costs beyond this row is what authorising, holding, settling and
 * logging cost. Prints `READY <port>` when listening.
 */
import { createServer, request, Agent } from "node:http"
import type { AddressInfo } from "node:net"

const upstream = new URL(`${process.env["UPSTREAM_URL"] ?? "http://127.0.0.1:1"}/v1/chat/completions`)
const agent = new Agent({ keepAlive: true })

const readAll = (stream: NodeJS.ReadableStream, done: (body: Buffer) => void) => {
  const chunks: Array<Buffer> = []
  stream.on("data", (chunk: Buffer) => chunks.push(chunk))
  stream.on("end", () => done(Buffer.concat(chunks)))
}

const server = createServer((req, res) =>
  readAll(req, (body) => {
    JSON.parse(body.toString("utf8"))
    const forwarded = request(
      upstream,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.length }
      },
      (answer) =>
        readAll(answer, (reply) => {
          JSON.parse(reply.toString("utf8"))
          res.writeHead(answer.statusCode ?? 502, {
            "content-type": "application/json",
            "content-length": reply.length
          })
          res.end(reply)
        })
    )
    forwarded.once("error", () => res.destroy())
    forwarded.end(body)
  })
)
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  console.log(
    `READY ${typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0}`
  )
})
