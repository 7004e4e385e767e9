/**
 * A complete in-process deployment behind a real HTTP server on loopback, for each
 * framework adapter: the management API under `/admin`, the guarded LLM routes under
 * `/v1`, a fake upstream behind them, and every log line captured.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { serve } from "@hono/node-server"
import express from "express"
import Fastify from "fastify"
import { Hono } from "hono"
import { Layer, Logger, ManagedRuntime, Redacted } from "effect"
import * as ExpressAdapter from "../../src/adapters/express.js"
import * as FastifyAdapter from "../../src/adapters/fastify.js"
import * as HonoAdapter from "../../src/adapters/hono.js"
import * as LlmGuard from "../../src/http/LlmGuard.js"
import * as ManagementApi from "../../src/http/ManagementApi.js"
import * as NodeBridge from "../../src/http/NodeBridge.js"
import { Admin, TokenEstimator } from "../../src/index.js"
import * as FakeUpstream from "./fakeUpstream.js"
import { makeServices } from "./runtime.js"

/** `node`: a bare `node:http` server, the guard's Node entry and a Node forwarder. */
export type Framework = "hono" | "express" | "fastify" | "node"

export const MASTER_KEY = "sk-master-0123456789abcdef-secret"

export interface Harness {
  /** The server's origin, `http://127.0.0.1:port`. */
  readonly url: string
  readonly upstream: FakeUpstream.FakeUpstream
  /** Every log line the services wrote. */
  readonly logs: Array<string>
  readonly close: () => Promise<void>
}

const LLM_ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]

const listen = async (
  framework: Framework,
  api: ManagementApi.ManagementHandler,
  guard: LlmGuard.Guard,
  upstream: FakeUpstream.FakeUpstream
): Promise<{ url: string; close: () => Promise<void> }> => {
  switch (framework) {
    case "hono": {
      const app = new Hono()
      // Quiet: a failing upstream call is expected in some tests (the guard answers 502).
      app.onError((_error, c) => c.text("handler failed", 500))
      app.route("/admin", HonoAdapter.managementApp(api))
      for (const route of LLM_ROUTES) {
        app.post(route, HonoAdapter.llmGuard(guard), (c) => upstream.forward(c.req.raw))
      }
      const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
        (resolve) => {
          const started = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
            resolve({ server: started, port: info.port })
          )
        }
      )
      return {
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((resolve) => {
            if ("closeAllConnections" in server) server.closeAllConnections()
            server.close(() => resolve())
          })
      }
    }
    case "express": {
      const app = express()
      app.use("/admin", ExpressAdapter.managementRouter(api))
      for (const route of LLM_ROUTES) app.post(route, ExpressAdapter.llmGuard(guard, upstream.forward))
      const server = app.listen(0, "127.0.0.1")
      await new Promise((resolve) => server.once("listening", resolve))
      return running(server)
    }
    case "node": {
      const server = createServer((req, res) => {
        const path = req.url ?? "/"
        if (path.startsWith("/admin/")) {
          void NodeBridge.serve(req, res, (request) => api(request), { url: path.slice("/admin".length) })
        } else if (guard.node !== undefined && LLM_ROUTES.includes(path)) {
          void guard.node(req, res, upstream.nodeForward)
        } else {
          res.writeHead(404).end()
        }
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      return running(server)
    }
    case "fastify": {
      const app = Fastify()
      await app.register(FastifyAdapter.managementPlugin, { prefix: "/admin", api })
      await app.register(FastifyAdapter.llmGuardPlugin, { guard, forward: upstream.forward })
      await app.listen({ port: 0, host: "127.0.0.1" })
      const address = app.server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      return {
        url: `http://127.0.0.1:${port}`,
        close: async () => {
          app.server.closeAllConnections()
          await app.close()
        }
      }
    }
  }
}

export interface StartOptions {
  /** How long the host's forwarder waits for the upstream (none: as long as it takes). */
  readonly upstreamTimeoutMs?: number
}

/** A listening `node:http` server as a running app: its URL, and a close that drops open connections. */
const running = (server: Server): { url: string; close: () => Promise<void> } => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

export const start = async (framework: Framework, options: StartOptions = {}): Promise<Harness> => {
  const logs: Array<string> = []
  const capture = Logger.replace(
    Logger.defaultLogger,
    Logger.map(Logger.logfmtLogger, (line) => {
      logs.push(line)
    })
  )
  const services = Layer.mergeAll(Admin.Admin.Default, TokenEstimator.layer).pipe(
    Layer.provideMerge(makeServices()),
    Layer.provide(capture)
  )
  const runtime = ManagedRuntime.make(Layer.merge(services, capture))
  const api = ManagementApi.toWebHandler(runtime, { masterKey: Redacted.make(MASTER_KEY) })
  const guard = LlmGuard.toWebHandler(runtime)
  const upstream = await FakeUpstream.start(
    options.upstreamTimeoutMs === undefined ? {} : { forwardTimeoutMs: options.upstreamTimeoutMs }
  )
  const server = await listen(framework, api, guard, upstream)
  return {
    url: server.url,
    upstream,
    logs,
    close: async () => {
      await server.close()
      await upstream.close()
      await runtime.dispose()
    }
  }
}
