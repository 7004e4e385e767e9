/**
 * A webhook receiver on 127.0.0.1 (a real `node:http` server). `behave` picks, for each
 * request, whether it answers 200, fails with a status, drops the connection or stalls
 * (answers only once `release` is called).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface Attempt {
  readonly eventId: string
  readonly timestamp: string | undefined
  readonly signature: string | undefined
  readonly authorization: string | undefined
  readonly path: string
  readonly body: string
  /** What the receiver did with it. */
  readonly outcome: Behaviour
}

export type Behaviour =
  | { readonly _tag: "ok" }
  | { readonly _tag: "status"; readonly status: number }
  | {
      readonly _tag: "drop"
    }
  | { readonly _tag: "stall" }

export interface Receiver {
  readonly url: string
  readonly attempts: Array<Attempt>
  /** Resolves once `count` attempts have been answered 200. */
  readonly delivered: (count: number) => Promise<ReadonlyArray<Attempt>>
  /** Resolves once `count` requests have arrived, whatever their outcome. */
  readonly arrived: (count: number) => Promise<void>
  /** Answers every stalled request with 200. */
  readonly release: () => void
  readonly close: () => Promise<void>
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

export const startReceiver = async (
  behave: (eventId: string, attemptOfEvent: number) => Behaviour
): Promise<Receiver> => {
  const attempts: Array<Attempt> = []
  const perEvent = new Map<string, number>()
  const stalled: Array<ServerResponse> = []
  const waiters: Array<() => void> = []
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter()
  }
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (done() ? resolve() : waiters.push(check))
      check()
    })
  const okCount = () => attempts.filter((attempt) => attempt.outcome._tag === "ok").length

  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const eventId = header(req, "x-teambudget-event-id") ?? ""
      const attempt = (perEvent.get(eventId) ?? 0) + 1
      perEvent.set(eventId, attempt)
      const outcome = behave(eventId, attempt)
      attempts.push({
        eventId,
        timestamp: header(req, "x-teambudget-timestamp"),
        signature: header(req, "x-teambudget-signature"),
        authorization: header(req, "authorization"),
        path: req.url ?? "",
        body: Buffer.concat(chunks).toString("utf8"),
        outcome
      })
      switch (outcome._tag) {
        case "ok":
          res.writeHead(200).end("ok")
          break
        case "status":
          res.writeHead(outcome.status).end("no")
          break
        case "drop":
          req.socket.destroy()
          break
        case "stall":
          stalled.push(res)
          break
      }
      wake()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0
  return {
    url: `http://127.0.0.1:${port}/hooks/budget`,
    attempts,
    delivered: async (count) => {
      await until(() => okCount() >= count)
      return attempts.filter((attempt) => attempt.outcome._tag === "ok")
    },
    arrived: (count) => until(() => attempts.length >= count),
    release: () => {
      for (const res of stalled.splice(0)) res.writeHead(200).end("late")
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
