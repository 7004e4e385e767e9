/**
 * teambudget for Hono: the management API as a sub-app, the LLM guard as middleware.
 * Hono speaks web `Request`/`Response`, so both run as they are.
 *
 * @example
 * import { Hono } from "hono"
 * import { managementApp, llmGuard } from "teambudget/hono"
 *
 * const app = new Hono()
 * app.route("/admin", managementApp(api))
 * app.post("/v1/chat/completions", llmGuard(guard), async (c) =>
 *   fetch("https://api.openai.com/v1/chat/completions", {
 *     method: "POST",
 *     headers: { authorization: `Bearer ${openAiKey}`, "content-type": "application/json" },
 *     body: await c.req.text()
 *   })
 * )
 * @since 0.1.0
 */
import { Hono, type MiddlewareHandler } from "hono"
import { basePath } from "hono/route"
import type { Admission } from "../services/BudgetPolicy.js"
import type { Guard } from "../http/LlmGuard.js"
import type { ManagementHandler } from "../http/ManagementApi.js"

/**
 * The context variables the guard sets: the admission of the request, for handlers
 * that want to know who is calling.
 *
 * @since 0.1.0
 */
export interface TeamBudgetEnv {
  Variables: { teambudget: Admission }
}

/**
 * The management API as a Hono app: mount it with `app.route(prefix, managementApp(api))`.
 *
 * @since 0.1.0
 */
export const managementApp = (api: ManagementHandler): Hono => {
  const app = new Hono()
  app.all("*", (c) => api(c.req.raw, basePath(c)))
  return app
}

/**
 * The guard as Hono middleware. The handlers after it receive the request as the
 * upstream should get it (`c.req.raw`: asking a stream for its usage, without the
 * caller's key), and `c.get("teambudget")`; their response is metered and settled.
 * A refused request never reaches them; one that throws is answered 502 `upstream_error`.
 *
 * @since 0.1.0
 */
export const llmGuard =
  (guard: Guard): MiddlewareHandler<TeamBudgetEnv> =>
  async (c, next) => {
    const response = await guard(c.req.raw, async (request, admission) => {
      c.req.raw = request
      c.set("teambudget", admission)
      await next()
      // A handler that threw reached no upstream: Hono turned the error into a response,
      // but to the guard it is a failed call (hold released, 502).
      if (c.error !== undefined) throw c.error
      return c.res
    })
    // Unset first: assigning over a response would copy its (now stale) headers back.
    c.res = undefined
    c.res = response
  }
