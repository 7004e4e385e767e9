/**
 * teambudget for Express: the management API as a router to mount under a prefix, the
 * LLM guard as a request handler that calls the upstream.
 *
 * No body parser is needed before them; where one ran already (`express.json()`), its
 * `req.body` is used.
 *
 * @example
 * import express from "express"
 * import { managementRouter, llmGuard } from "teambudget/express"
 *
 * const app = express()
 * app.use("/admin", managementRouter(api))
 * app.post("/v1/chat/completions", llmGuard(guard, async (request) =>
 *   fetch("https://api.openai.com/v1/chat/completions", {
 *     method: "POST",
 *     headers: { authorization: `Bearer ${openAiKey}`, "content-type": "application/json" },
 *     body: await request.text()
 *   })
 * ))
 * @since 0.1.0
 */
import type { Request as ExpressRequest, RequestHandler } from "express"
import type { Forward, Guard, NodeForward } from "../http/LlmGuard.js"
import type { ManagementHandler } from "../http/ManagementApi.js"
import * as NodeBridge from "../http/NodeBridge.js"

const parsed = (req: ExpressRequest): NodeBridge.ToRequestOptions => {
  // `req.body` is typed `any`; only a body a parser actually produced is used.
  const body: unknown = req.body
  return req.readableEnded && body !== undefined ? { parsedBody: body } : {}
}

/**
 * The management API as Express middleware: `app.use("/admin", managementRouter(api))`.
 * Express strips the mount prefix from `req.url`, so the API sees its own paths.
 *
 * @since 0.1.0
 */
export const managementRouter =
  (api: ManagementHandler): RequestHandler =>
  (req, res) => {
    void NodeBridge.serve(req, res, (request) => api(request), parsed(req))
  }

/**
 * The guard in front of `forward`, as an Express handler for the LLM routes.
 *
 * @since 0.1.0
 */
export const llmGuard =
  (guard: Guard, forward: Forward | NodeForward): RequestHandler =>
  (req, res) => {
    void (guard.node === undefined
      ? NodeBridge.serve(req, res, (request) => guard(request, forward), parsed(req))
      : guard.node(req, res, forward, parsed(req)))
  }
