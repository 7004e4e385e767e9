/**
 * The proxy's HTTP server (`node:http`): the LLM routes of SPEC 11.2 behind the SDK's
 * guard, `GET /v1/models`, and every other path to the SDK's management API.
 *
 * `drain` stops accepting connections, answers 503 to requests that still arrive on
 * open connections, and resolves once every request in flight has ended and every
 * hold has been settled or released.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { FiberRefs, type ManagedRuntime, Option, type Redacted } from "effect"
import { ErrorResponse, LlmGuard, ManagementApi, NodeBridge, type TeamBudget } from "../../src/index.js"
import type { ProxyConfig } from "./config.js"
import * as Log from "./log.js"
import * as Models from "./models.js"
import { CurrentRecord, type makeHolds, newRecord, type RequestRecord } from "./tracking.js"
import * as Upstream from "./upstream.js"

export interface ProxyServer {
  /** `http://host:port` as bound (the port resolved when `PORT=0`). */
  readonly url: string
  readonly port: number
  /** Drains (see the module comment); false when `timeoutMs` passed first. */
  readonly drain: (timeoutMs: number) => Promise<boolean>
}

export interface ServerOptions {
  readonly config: ProxyConfig
  readonly runtime: ManagedRuntime.ManagedRuntime<TeamBudget.Services, unknown>
  readonly masterKey: Redacted.Redacted<string>
  readonly holds: ReturnType<typeof makeHolds>
}

const isModelsPath = (path: string) => path === "/v1/models" || path === "/models"

/** A path `URL` would give back unchanged: no host (`//`), dot segment, escape, fragment or backslash to resolve. */
const PLAIN_PATH = /^\/(?!\/)[\w\-/]*$/

/** The path of a request target, without its query; `/` for one that does not parse. */
export const pathOf = (target: string | undefined): string => {
  const query = target?.indexOf("?") ?? -1
  const path = query === -1 ? target : target?.slice(0, query)
  if (path !== undefined && PLAIN_PATH.test(path)) return path
  try {
    return new URL(target ?? "/", "http://localhost").pathname
  } catch {
    return "/"
  }
}

/** Resolves when `ready()` holds, checking whenever `poke` is called and on a slow timer. */
const waitUntil = (ready: () => boolean, timeoutMs: number, onPoke: (poke: () => void) => void) =>
  new Promise<boolean>((resolve) => {
    let done = false
    const finish = (ok: boolean) => {
      if (done) return
      done = true
      clearInterval(timer)
      clearTimeout(deadline)
      resolve(ok)
    }
    const check = () => {
      if (ready()) finish(true)
    }
    const timer = setInterval(check, 50)
    const deadline = setTimeout(() => finish(false), timeoutMs)
    onPoke(check)
    check()
  })

export const start = async (options: ServerOptions): Promise<ProxyServer> => {
  const { config, runtime, masterKey, holds } = options
  const served = config.models.map((route) => route.name)
  const forward = Upstream.forwarder(config.models)
  const api = ManagementApi.toWebHandler(runtime, { masterKey })
  const models = Models.handler(served)

  let inFlight = 0
  let draining = false
  let poke = () => {}

  // A request's line is written once its response has ended and its hold has closed,
  // so a stream's line carries what it was charged. Until then it is pending.
  const pending = new Map<RequestRecord, () => void>()
  const logWhenDone = (record: RequestRecord, res: ServerResponse) => {
    let ended = false
    let status = 0
    let latency = 0
    const flush = () => {
      if (!ended || record.holdOpen || !pending.delete(record)) return
      Log.write(Log.line(record, status, latency))
    }
    pending.set(record, flush)
    res.on("close", () => {
      ended = true
      status = res.statusCode
      latency = performance.now() - record.startedAt
      flush()
    })
  }
  holds.onClose = (record) => {
    Option.map(record, (r) => pending.get(r)?.())
    poke()
  }

  const guard = (record: RequestRecord, req: IncomingMessage, res: ServerResponse) =>
    LlmGuard.guardNode(req, res, {
      node: (upstream, admission) => {
        const sent = performance.now()
        return forward(upstream, admission.model).then((answer) => {
          record.upstreamMs = Option.some(performance.now() - sent)
          return answer
        })
      }
    })
  // The guard never fails (every refusal is a response), so nothing awaits its fiber. It
  // starts at once with the request's record in place: no scheduler hop, no scoped set.
  const llm = (record: RequestRecord, req: IncomingMessage, res: ServerResponse) =>
    runtime.runFork(guard(record, req, res), {
      immediate: true,
      updateRefs: (refs, fiberId) =>
        FiberRefs.updateAs(refs, { fiberId, fiberRef: CurrentRecord, value: Option.some(record) })
    })

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? "GET").toUpperCase()
    const path = pathOf(req.url)
    if (draining) {
      res.setHeader("connection", "close")
      void NodeBridge.writeResponse(
        ErrorResponse.plain(503, "service_unavailable", "shutting_down", "The proxy is shutting down."),
        res
      )
      return
    }
    inFlight++
    const record = newRecord(method, path)
    logWhenDone(record, res)
    res.on("close", () => {
      inFlight--
      if (draining) server.closeIdleConnections()
      poke()
    })
    if (method === "POST" && Upstream.endpointOf(path) !== undefined) {
      llm(record, req, res)
      return
    }
    const web =
      method === "GET" && isModelsPath(path)
        ? (request: Request) =>
            runtime.runPromise(
              models(request, (principal) => {
                record.principal = Option.some(principal)
              })
            )
        : (request: Request) => api(request)
    void NodeBridge.serve(req, res, web)
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(config.port, config.host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const address = server.address()
  const port =
    typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : config.port
  const host = config.host.includes(":") ? `[${config.host}]` : config.host

  return {
    url: `http://${host}:${port}`,
    port,
    drain: async (timeoutMs) => {
      draining = true
      server.close()
      server.closeIdleConnections()
      const drained = await waitUntil(
        () => inFlight === 0 && holds.open() === 0 && pending.size === 0,
        timeoutMs,
        (check) => {
          poke = check
        }
      )
      server.closeAllConnections()
      return drained
    }
  }
}
