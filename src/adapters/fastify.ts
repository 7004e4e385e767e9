/**
 * teambudget for Fastify: the management API and the LLM guard as plugins. Each plugin
 * is encapsulated: it reads bodies itself, without touching the parsers of the rest
 * of the app.
 *
 * @example
 * import Fastify from "fastify"
 * import { managementPlugin, llmGuardPlugin } from "teambudget/fastify"
 *
 * const app = Fastify()
 * await app.register(managementPlugin, { prefix: "/admin", api })
 * await app.register(llmGuardPlugin, { guard, forward: async (request) => fetch(upstreamUrl, {
 *   method: "POST", body: await request.text(),
 *   headers: { authorization: `Bearer ${openAiKey}`, "content-type": "application/json" }
 * }) })
 * @since 0.1.0
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify"
import type { Forward, Guard, NodeForward } from "../http/LlmGuard.js"
import type { ManagementHandler } from "../http/ManagementApi.js"
import * as NodeBridge from "../http/NodeBridge.js"

/** @since 0.1.0 */
export interface ManagementPluginOptions {
  readonly api: ManagementHandler
}

/** @since 0.1.0 */
export interface LlmGuardPluginOptions {
  readonly guard: Guard
  readonly forward: Forward | NodeForward
  /** The routes to guard (POST). Default: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`. */
  readonly routes?: ReadonlyArray<string>
}

/** The LLM routes of SPEC 11.2 that carry a body to price. @since 0.1.0 */
export const DEFAULT_ROUTES: ReadonlyArray<string> = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings"
]

/** Leaves bodies unread, for the web handler to stream. */
const rawBodies = (instance: FastifyInstance) => {
  instance.removeAllContentTypeParsers()
  instance.addContentTypeParser("*", (_request, _payload, done) => done(null))
}

/** Hands the Node request and response to a web handler; Fastify leaves the reply alone. */
const hijacked =
  (handler: (request: Request) => Promise<Response>) => (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack()
    void NodeBridge.serve(request.raw, reply.raw, handler)
  }

/**
 * The management API under the plugin's prefix:
 * `app.register(managementPlugin, { prefix: "/admin", api })`.
 *
 * @since 0.1.0
 */
export const managementPlugin: FastifyPluginAsync<ManagementPluginOptions> = async (instance, options) => {
  rawBodies(instance)
  const prefix = instance.prefix
  const handle = hijacked((request) => options.api(request, prefix))
  instance.all("/*", handle)
  instance.all("/", handle)
}

/**
 * The guard in front of `forward` on the LLM routes:
 * `app.register(llmGuardPlugin, { guard, forward })`.
 *
 * @since 0.1.0
 */
export const llmGuardPlugin: FastifyPluginAsync<LlmGuardPluginOptions> = async (instance, options) => {
  rawBodies(instance)
  const { guard, forward } = options
  const node = guard.node
  const handle =
    node === undefined
      ? hijacked((request) => guard(request, forward))
      : (request: FastifyRequest, reply: FastifyReply) => {
          reply.hijack()
          void node(request.raw, reply.raw, forward)
        }
  for (const route of options.routes ?? DEFAULT_ROUTES) instance.post(route, handle)
}
