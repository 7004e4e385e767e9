/**
 * The request guard of the LLM routes: authorise with a worst-case estimate, call the
 * upstream, settle from the response's `usage`.
 *
 * - The bearer key is authorised with the request's estimate (model, messages or
 *   input, `max_tokens`), which places the hold.
 * - A streamed request gets `stream_options.include_usage`, so the upstream ends the
 *   stream with its usage; every byte of the stream still reaches the client unchanged.
 * - The upstream's `usage` settles the hold. Without usage, the content delivered is
 *   counted. A client that goes away mid-stream is charged for what was delivered, with
 *   status `partial`.
 * - An upstream error response releases the hold and goes to the client as it came; an
 *   upstream that cannot be reached, or answers 200 with a body that is not JSON,
 *   releases it and answers 502 `upstream_error` (504 when the forward timed out).
 *
 * @since 0.1.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Readable } from "node:stream"
import { Cause, Effect, Either, Layer, ManagedRuntime, Option, Predicate, Runtime } from "effect"
import { AuthenticationFailed, type TeamBudgetError, UpstreamFailed } from "../domain/Errors.js"
import type { SpendStatus } from "../domain/SpendLog.js"
import { type Admission, BudgetPolicy } from "../services/BudgetPolicy.js"
import { Pricing, type Usage } from "../services/Pricing.js"
import { type Estimate, TokenEstimator } from "../services/TokenEstimator.js"
import type { Settlement } from "../store/SpendLedger.js"
import { askForUsage } from "./AskForUsage.js"
import * as Bearer from "./Bearer.js"
import * as Body from "./Body.js"
import * as CachedBody from "./CachedBody.js"
import * as ErrorResponse from "./ErrorResponse.js"
import * as Exchange from "./Exchange.js"
import * as GuardHeaders from "./GuardHeaders.js"
import * as NodeBridge from "./NodeBridge.js"
import { type Runner, runPromise } from "./Runner.js"
import * as Sse from "./Sse.js"
import * as UsageMeter from "./UsageMeter.js"

/**
 * Calls the upstream model with the guarded request. The request carries no
 * `Authorization` header: the virtual key never leaves the process, and the upstream's
 * own credentials are the forwarder's to add.
 *
 * The request holds its body as the text the guard read (see `UpstreamRequest`): read
 * it with `text()`, `json()` or `body`, or pass the request as the `init` of `fetch`.
 * Passed as the `input` of `fetch` or `new Request` it is refused with a `TypeError`:
 * it carries the guard's own URL, not the provider's.
 *
 * @since 0.1.0
 */
export type Forward = (request: Request, admission: Admission) => Promise<Response>

/**
 * Calls the upstream model on Node's `http` client, without web objects: the guarded
 * request as its parts (the body already read, the caller's key removed), the answer as
 * status, headers and a byte stream (an `http.IncomingMessage` fits). Bytes reach the
 * client as they arrive; a client that goes away runs what `onAbandoned` registered.
 * Reject with an error named `TimeoutError` for a 504. Every guard accepts it in place
 * of a {@link Forward}.
 *
 * @example
 * const forward: LlmGuard.NodeForward = {
 *   node: (upstream) =>
 *     new Promise((resolve, reject) => {
 *       const req = http.request(`http://127.0.0.1:4000${upstream.url}`, {
 *         method: upstream.method, headers: Object.fromEntries(upstream.headers)
 *       }, (res) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: res }))
 *       req.once("error", reject)
 *       upstream.onAbandoned(() => req.destroy())
 *       req.end(upstream.body)
 *     })
 * }
 * @since 0.1.0
 */
export interface NodeForward {
  readonly node: (upstream: Exchange.NodeUpstream, admission: Admission) => Promise<Exchange.NodeAnswer>
}

/**
 * A guard as a Promise function, for any framework that speaks web `Request` and
 * `Response`.
 *
 * @since 0.1.0
 */
export interface Guard {
  (request: Request, forward: Forward | NodeForward): Promise<Response>
  /**
   * The same guard serving a Node request and response directly (Express, Fastify,
   * `node:http`), without web objects around them; `options` as for `NodeBridge.serve`.
   */
  readonly node?: (
    req: IncomingMessage,
    res: ServerResponse,
    forward: Forward | NodeForward,
    options?: NodeBridge.ToRequestOptions
  ) => Promise<void>
}

/** The services a guard runs on. @since 0.1.0 */
export type GuardServices = BudgetPolicy | TokenEstimator | Pricing

/** @since 0.1.0 */
export interface LlmGuardOptions {
  /** The largest request body accepted. Default 20 MiB (requests may carry images). */
  readonly maxBodyBytes?: number
  /**
   * Extra response headers for an admitted request. By default
   * `x-ratelimit-limit-requests` / `-tokens` and `x-ratelimit-remaining-requests` /
   * `-tokens` of the tightest rate limit of each kind (see `GuardHeaders.admitted`).
   */
  readonly rateLimitHeaders?: (admission: Admission) => ReadonlyArray<readonly [string, string]>
}

/** @since 0.1.0 */
export const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024

const ignore = (): void => {}
const nothing = (): Promise<void> => Promise.resolve()
const notAhead = (): Promise<undefined> => Promise.resolve(undefined)

// Stateless between calls (no `stream` option): one decoder serves every response.
const utf8 = new TextDecoder()

/** The body the upstream gets: the client's bytes, for a stream asking for usage. */
const upstreamBody = (text: string, body: unknown, estimate: Estimate): string =>
  estimate.stream && Predicate.isRecord(body) ? askForUsage(text, body) : text

/** The output tokens to hold: the request's cap, else the model's cap for every choice asked for. */
const outputCap = (pricing: Pricing["Type"], estimate: Estimate): Effect.Effect<number | undefined> =>
  Option.match(estimate.maxOutputTokens, {
    onSome: Effect.succeed,
    onNone: () =>
      estimate.choices <= 1
        ? Effect.succeed(undefined)
        : pricing.price(estimate.model).pipe(
            Effect.map((price) =>
              Option.getOrUndefined(Option.map(price.maxOutputTokens, (cap) => cap * estimate.choices))
            ),
            // An unknown price is the policy's to report.
            Effect.orElseSucceed(() => undefined)
          )
  })

/**
 * A web body with what was read of it ahead: chunks already taken from `reader`, and
 * the read still under way, if any.
 */
interface ReadAhead {
  readonly reader: ReadableStreamDefaultReader<Uint8Array>
  readonly chunks: Array<Uint8Array>
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined
}

const LATER = Symbol("later")

// Two turns of the microtask queue: a body already in memory has its next chunk (or its
// end) by then, while one still on the wire does not, and nothing waits for it.
const later = (): Promise<typeof LATER> => Promise.resolve().then(() => Promise.resolve(LATER))

// A complete body read ahead stops at this many chunks: past them the stream is passed on.
const MAX_READ_AHEAD = 4

/**
 * Reads what a web body already holds, without waiting for the network: its bytes when
 * it is complete (an upstream that answered in one piece, or an in-process handler),
 * else undefined, with what was read kept in `ahead` for the pass-through.
 */
const readAhead = async (ahead: ReadAhead): Promise<Uint8Array<ArrayBuffer> | undefined> => {
  let size = 0
  for (let i = 0; i <= MAX_READ_AHEAD; i++) {
    const pending = ahead.reader.read()
    // A read that fails is the pass-through's to report: it is kept for it, as one not done yet.
    const next = await Promise.race([pending, later()]).catch((): typeof LATER => LATER)
    if (next === LATER) {
      ahead.pending = pending
      return undefined
    }
    if (next.done) {
      const bytes = new Uint8Array(size)
      let offset = 0
      for (const chunk of ahead.chunks) {
        bytes.set(chunk, offset)
        offset += chunk.byteLength
      }
      return bytes
    }
    ahead.chunks.push(next.value)
    size += next.value.byteLength
  }
  return undefined
}

/**
 * Passes a stream through unchanged, showing each chunk to `observe` and calling
 * `finish` once: when the stream ends, fails, or the client cancels it. The stream
 * reads upstream only as fast as the client reads, so what was read is what was
 * delivered; chunks read ahead are shown as they go out.
 */
const metered = (
  ahead: ReadAhead,
  observe: (chunk: Uint8Array) => void,
  finish: (outcome: Exchange.Outcome) => Promise<void>
): ReadableStream<Uint8Array> => {
  const reader = ahead.reader
  let finished = false
  let cancelled = false
  const once = (outcome: Exchange.Outcome) => {
    if (finished) return Promise.resolve()
    finished = true
    return finish(outcome)
  }
  const deliver = (controller: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array) => {
    try {
      observe(chunk)
    } catch {
      // Metering never breaks the client's stream.
    }
    controller.enqueue(chunk)
  }
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const early = ahead.chunks.shift()
        if (early !== undefined) return deliver(controller, early)
        let next: ReadableStreamReadResult<Uint8Array>
        try {
          const pending = ahead.pending
          ahead.pending = undefined
          next = await (pending ?? reader.read())
        } catch (error) {
          await once(cancelled ? "cancelled" : "failed")
          if (!cancelled) controller.error(error)
          return
        }
        if (next.done || cancelled) {
          await once(cancelled ? "cancelled" : "complete")
          if (!cancelled) controller.close()
          return
        }
        deliver(controller, next.value)
      },
      async cancel(reason) {
        cancelled = true
        await reader.cancel(reason).catch(() => undefined)
        await once("cancelled")
      }
    },
    { highWaterMark: 0 }
  )
}

type ReplyBody = Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | Exchange.NodeBody | null

/** The upstream's answer, whichever contract produced it. */
interface Answer {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers | Exchange.NodeHeaders
  readonly contentType: string
  /** The body as it came, unobserved. */
  readonly passThrough: () => ReplyBody
  /** The body passed through with metering; null when there is none. */
  readonly metered: (
    observe: (chunk: Uint8Array) => void,
    finish: (outcome: Exchange.Outcome) => Promise<void>
  ) => ReplyBody
  /** The whole body; rejects when it breaks off. */
  readonly bytes: () => Promise<Uint8Array<ArrayBuffer>>
  /**
   * The whole body if it is already there (read without waiting for the network), else
   * undefined; `metered` then still passes every byte. Never rejects.
   */
  readonly complete: () => Promise<Uint8Array<ArrayBuffer> | undefined>
}

const fromStream = (response: Response): Answer => {
  let ahead: ReadAhead | undefined
  const started = (body: ReadableStream<Uint8Array>): ReadAhead =>
    (ahead ??= { reader: body.getReader(), chunks: [], pending: undefined })
  return {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    contentType: response.headers.get("content-type") ?? "",
    passThrough: () => response.body,
    metered: (observe, finish) =>
      response.body === null ? null : metered(started(response.body), observe, finish),
    // A byte view, not the ArrayBuffer: servers such as `@hono/node-server` write it directly.
    bytes: () => response.arrayBuffer().then((buffer) => new Uint8Array(buffer)),
    complete: () => (response.body === null ? Promise.resolve(undefined) : readAhead(started(response.body)))
  }
}

/**
 * A response whose bytes were taken from `@hono/node-server`'s cache: complete, and
 * never turned into a stream. That server writes no reason phrase, so none is kept.
 */
const fromCached = (response: Response, bytes: Uint8Array<ArrayBuffer>): Answer => {
  const headers = response.headers
  return {
    status: response.status,
    statusText: "",
    headers,
    contentType: headers.get("content-type") ?? "",
    passThrough: () => bytes,
    metered: (observe, finish) =>
      fromStream(new Response(bytes, { status: response.status, headers })).metered(observe, finish),
    bytes: () => Promise.resolve(bytes),
    complete: () => Promise.resolve(bytes)
  }
}

const fromResponse = (response: Response): Answer => {
  const cached = CachedBody.bytesOf(response)
  return cached === undefined ? fromStream(response) : fromCached(response, cached)
}

/** A Node body read whole, rejecting when the stream closes before its end. */
const readAll = (source: Readable): Promise<Uint8Array<ArrayBuffer>> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    source.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.byteLength
    })
    source.on("error", ignore)
    source.once("end", () => {
      const bytes = new Uint8Array(size)
      let offset = 0
      for (const chunk of chunks) {
        bytes.set(chunk, offset)
        offset += chunk.byteLength
      }
      resolve(bytes)
    })
    source.once("close", () => {
      if (!source.readableEnded) reject(new Error("the upstream response broke off"))
    })
  })

const headerText = (value: string | ReadonlyArray<string> | undefined): string =>
  value === undefined ? "" : typeof value === "string" ? value : value.join(", ")

const fromNode = (answer: Exchange.NodeAnswer): Answer => ({
  status: answer.status,
  statusText: answer.statusText ?? "",
  headers: answer.headers,
  contentType: headerText(answer.headers["content-type"]),
  passThrough: () => new Exchange.NodeBody(answer.body, ignore, nothing),
  metered: (observe, finish) => new Exchange.NodeBody(answer.body, observe, finish),
  bytes: () => readAll(answer.body),
  // A Node body is always passed through as it comes.
  complete: notAhead
})

/** Sends the guarded request through either contract. */
const call = (
  inbound: Exchange.Inbound,
  forward: Forward | NodeForward,
  body: string,
  admission: Admission
): Promise<Answer> =>
  typeof forward === "function"
    ? forward(inbound.upstream(body), admission).then(fromResponse)
    : forward.node(inbound.nodeUpstream(body), admission).then(fromNode)

/**
 * Why a forward rejected: a timeout (an `AbortSignal.timeout`, or a forwarder's own
 * error named `TimeoutError`) is a 504, anything else a 502.
 */
const unreachable = (error: unknown): UpstreamFailed =>
  error instanceof Error && error.name === "TimeoutError"
    ? new UpstreamFailed({ status: 504, detail: "the upstream did not answer in time" })
    : new UpstreamFailed({ status: 502, detail: "the upstream could not be reached" })

const logged = (cause: Cause.Cause<TeamBudgetError>): Effect.Effect<Response> =>
  Option.isSome(Cause.failureOption(cause))
    ? Effect.succeed(ErrorResponse.fromCause(cause))
    : Effect.as(
        Effect.logError("teambudget: the LLM guard failed unexpectedly", cause),
        ErrorResponse.internal()
      )

/**
 * The guard over any server's exchange: never fails; every refusal is a response
 * (SPEC 9). A reply built here carries bytes or a stream, so a Node server writes it
 * without a web `Response`. An event stream whose body is already complete when it
 * arrives (see `readAhead`) goes out in one piece; one still arriving is streamed.
 *
 * @example
 * const reply = yield* LlmGuard.serve(Exchange.fromRequest(request), forward)
 * @since 0.1.0
 */
export const serve = (
  inbound: Exchange.Inbound,
  forward: Forward | NodeForward,
  options: LlmGuardOptions = {}
): Effect.Effect<Exchange.Reply | Response, never, GuardServices> =>
  Effect.gen(function* () {
    const policy = yield* BudgetPolicy
    const estimator = yield* TokenEstimator
    const pricing = yield* Pricing

    const token = Bearer.fromHeader(inbound.authorization)
    if (Option.isNone(token)) return yield* new AuthenticationFailed({ reason: "missing" })
    const text = yield* inbound.text(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)
    const body = yield* Body.parseJson(text)
    const estimate = yield* estimator.estimate(body)
    const maxOutputTokens = yield* outputCap(pricing, estimate)
    const admission = yield* policy.authorize({
      apiKey: token.value,
      model: estimate.model,
      promptTokens: estimate.promptTokens,
      ...(maxOutputTokens === undefined ? {} : { maxOutputTokens }),
      ...Option.match(estimate.endUser, { onNone: () => ({}), onSome: (endUser) => ({ endUser }) })
    })
    const limitHeaders = (options.rateLimitHeaders ?? GuardHeaders.admitted)(admission)

    // Built only on the paths that give the hold back: most requests settle it.
    const release = Effect.suspend(() =>
      Effect.catchAll(policy.release(admission), (error) =>
        Effect.logWarning("teambudget: releasing a hold failed").pipe(
          Effect.annotateLogs({ requestId: admission.requestId, error: error.message })
        )
      )
    )
    const meter = UsageMeter.make()
    const settle = (status: SpendStatus): Effect.Effect<Option.Option<Settlement>> => {
      // Counting delivered text runs the tokenizer: only when the upstream gave no usage.
      const byEstimate = (): Usage => ({
        promptTokens: estimate.promptTokens,
        completionTokens: meter.deliveredTokens()
      })
      const usage = Option.getOrElse(meter.reported(), byEstimate)
      return policy.settle(admission, usage, status).pipe(
        // Usage the pricing refuses (an upstream reporting nonsense) is replaced by the count.
        Effect.catchTag("InvalidRequest", () => policy.settle(admission, byEstimate(), status)),
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          Effect.logWarning("teambudget: settling a request failed").pipe(
            Effect.annotateLogs({ requestId: admission.requestId, error: error.message }),
            Effect.as(Option.none<Settlement>())
          )
        )
      )
    }

    // One async step whose canceller gives the hold back when the guard is interrupted
    // while the upstream works: the same as `tryPromise` with `onInterrupt` and `either`,
    // at a fraction of their steps on every request.
    const answered = yield* Effect.async<Either.Either<Answer, UpstreamFailed>>((resume) => {
      const failed = (error: unknown) => resume(Effect.succeed(Either.left(unreachable(error))))
      try {
        call(inbound, forward, upstreamBody(text, body, estimate), admission).then(
          (answer) => resume(Effect.succeed(Either.right(answer))),
          failed
        )
      } catch (error) {
        failed(error)
      }
      return release
    })
    if (Either.isLeft(answered)) {
      yield* release
      return ErrorResponse.fromError(answered.left, limitHeaders)
    }
    const answer = answered.right

    if (answer.status < 200 || answer.status > 299) {
      yield* release
      return new Exchange.Reply(
        answer.status,
        answer.statusText,
        answer.headers,
        limitHeaders,
        answer.passThrough()
      )
    }

    const contentType = answer.contentType.toLowerCase()
    if (contentType.includes("text/event-stream")) {
      const parser = Sse.make(meter.observeEvent)
      const streamHeaders = (): ReadonlyArray<Exchange.Header> => [
        ...GuardHeaders.remainingBudget(admission.hold.tightest),
        ...limitHeaders
      ]
      // A stream that is already whole goes out in one piece, settled like a JSON answer;
      // its headers stay those of a stream, so they do not depend on the upstream's timing.
      const whole = yield* Effect.promise(answer.complete)
      if (whole !== undefined) {
        try {
          parser.push(whole)
          parser.end()
        } catch {
          // Metering never breaks the client's stream.
        }
        yield* settle("success")
        return new Exchange.Reply(answer.status, answer.statusText, answer.headers, streamHeaders(), whole)
      }
      // The stream settles after this fiber has returned, with its services.
      const runtime = yield* Effect.runtime<never>()
      const stream = answer.metered(parser.push, (outcome): Promise<void> => {
        if (outcome === "complete") parser.end()
        return Runtime.runPromise(
          runtime,
          Effect.asVoid(settle(outcome === "complete" ? "success" : "partial"))
        )
      })
      if (stream !== null)
        return new Exchange.Reply(answer.status, answer.statusText, answer.headers, streamHeaders(), stream)
    }

    const bytes = yield* Effect.promise(() =>
      answer.bytes().then(Option.some, () => Option.none<Uint8Array<ArrayBuffer>>())
    )
    if (Option.isNone(bytes)) {
      yield* release
      return ErrorResponse.fromError(
        new UpstreamFailed({ status: 502, detail: "the upstream response broke off" }),
        limitHeaders
      )
    }
    if (!meter.observeBody(utf8.decode(bytes.value)) && contentType.includes("json")) {
      // Nothing the client could use went out: the call failed, and its hold goes back.
      yield* release
      return ErrorResponse.fromError(
        new UpstreamFailed({ status: 502, detail: "the upstream answered with a body that is not JSON" }),
        limitHeaders
      )
    }
    const settlement = yield* settle("success")
    const tightest = Option.match(settlement, {
      onNone: () => admission.hold.tightest,
      onSome: (s) => s.tightest
    })
    return new Exchange.Reply(
      answer.status,
      answer.statusText,
      answer.headers,
      [...GuardHeaders.remainingBudget(tightest), ...limitHeaders],
      bytes.value
    )
  }).pipe(Effect.catchAllCause(logged))

/**
 * The guard as an Effect over a web `Request`: never fails; every refusal is a
 * response (SPEC 9).
 *
 * @example
 * const response = yield* LlmGuard.guard(request, async (upstream) => fetch("https://api.openai.com/v1/chat/completions", {
 *   method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: await upstream.text()
 * }))
 * @since 0.1.0
 */
export const guard = (
  request: Request,
  forward: Forward | NodeForward,
  options: LlmGuardOptions = {}
): Effect.Effect<Response, never, GuardServices> =>
  Effect.map(serve(Exchange.fromRequest(request), forward, options), Exchange.toResponse)

/**
 * The guard serving a Node request and response: the body is read from the socket and
 * the reply written to `res`, with no web `Request` or `Response` but the one the
 * upstream gets. Completes once the reply is written (a stream: once it has ended).
 *
 * @example
 * http.createServer((req, res) => void runtime.runPromise(LlmGuard.guardNode(req, res, forward)))
 * @since 0.1.0
 */
export const guardNode = (
  req: IncomingMessage,
  res: ServerResponse,
  forward: Forward | NodeForward,
  options: LlmGuardOptions & NodeBridge.ToRequestOptions = {}
): Effect.Effect<void, never, GuardServices> =>
  Effect.flatMap(serve(NodeBridge.inbound(req, res, options), forward, options), (reply) =>
    Effect.promise(() => NodeBridge.writeReply(reply, res).catch(() => res.destroy()))
  )

const withNode = (
  run: <A>(effect: Effect.Effect<A, never, GuardServices>) => Promise<A>,
  options: LlmGuardOptions
): Guard =>
  Object.assign((request: Request, forward: Forward | NodeForward) => run(guard(request, forward, options)), {
    node: (
      req: IncomingMessage,
      res: ServerResponse,
      forward: Forward | NodeForward,
      node?: NodeBridge.ToRequestOptions
    ) => run(guardNode(req, res, forward, { ...options, ...node }))
  })

/**
 * The guard as a Promise function over the services in the current context.
 *
 * @since 0.1.0
 */
export const make = (options: LlmGuardOptions = {}): Effect.Effect<Guard, never, GuardServices> =>
  Effect.map(Effect.runtime<GuardServices>(), (runtime) => withNode(Runtime.runPromise(runtime), options))

/**
 * The guard as a Promise function, run by a runtime that has its services.
 *
 * @example
 * const runtime = ManagedRuntime.make(services)
 * const llmGuard = LlmGuard.toWebHandler(runtime)
 * const response = await llmGuard(request, async (upstream) => fetch(upstreamUrl, { method: "POST", body: await upstream.text() }))
 * @since 0.1.0
 */
export const toWebHandler = (runner: Runner<GuardServices>, options: LlmGuardOptions = {}): Guard => {
  return withNode(runPromise(runner), options)
}

/**
 * The guard over a layer of its services, with `dispose` to release them.
 *
 * @since 0.1.0
 */
export const toWebHandlerLayer = <E>(
  layer: Layer.Layer<GuardServices, E>,
  options: LlmGuardOptions = {}
): { readonly guard: Guard; readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(layer)
  return { guard: toWebHandler(runtime, options), dispose: () => runtime.dispose() }
}
