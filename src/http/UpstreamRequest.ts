/**
 * The request a web forwarder gets from the guard: a `Request` whose body is the text
 * the guard has already read, kept as text rather than behind a web stream.
 *
 * Why not a `Request` built by the runtime: on Node 20 every `ReadableStream` is backed
 * by a native object that outlives the request by a garbage collection or more,
 * dragging what it references into the old generation, and a `Request` built with a
 * body makes one even when the forwarder only calls `text()`. Measured side by side on
 * the Hono benchmark (instant model, 32 connections), a guarded request cost about 40%
 * less CPU with no web stream made on its path. Building the runtime's `Request` at all
 * (its headers copied and checked, an `AbortController` of its own) was a further 4 to
 * 5% of that CPU, so this request is never one: it answers every member of `Request`
 * itself, and inherits from `Request.prototype` only so that `instanceof Request` holds.
 *
 * The body is read as on any request (`text`, `json`, `arrayBuffer`, `blob`, `bytes`,
 * `formData`, or the `body` stream, made on first use), once; `headers` and `signal`
 * (the caller's) are made when first read. Passed as the `init` of `fetch` or
 * `new Request`, it carries its method, headers, body and signal. Passed as their
 * `input`, the runtime finds none of its own state in it and throws a `TypeError`:
 * that form would also keep the guard's own URL, so it is never the call to a provider.
 *
 * @since 0.1.0
 */

const encoder = new TextEncoder()

const used = (): TypeError => new TypeError("the request's body has already been read")

/** What the request is made from. @since 0.1.0 */
export interface UpstreamRequestInit {
  readonly method: string
  /** The headers, asked for when the request's `headers` are first read. */
  readonly headers: () => HeadersInit
  /** Aborts when the caller goes away; asked for only when the request's `signal` is read. */
  readonly signal: () => AbortSignal
}

/**
 * The guarded request as a web `Request`, its body held as text.
 *
 * @example
 * const request = new UpstreamRequest("http://localhost/v1/chat/completions", { method: "POST", headers: () => [["content-type", "application/json"]], signal: () => signal }, '{"model":"gpt-4o"}')
 * const response = await fetch("https://api.openai.com/v1/chat/completions", request)
 * @since 0.1.0
 */
export class UpstreamRequest implements Request {
  readonly url: string
  readonly method: string
  readonly #text: string
  readonly #headersOf: () => HeadersInit
  readonly #signalOf: () => AbortSignal
  #headers: Headers | undefined
  #signal: AbortSignal | undefined
  #used = false
  #stream: ReadableStream<Uint8Array<ArrayBuffer>> | undefined

  constructor(url: string, init: UpstreamRequestInit, text: string) {
    this.url = url
    this.method = init.method
    this.#text = text
    this.#headersOf = init.headers
    this.#signalOf = init.signal
  }

  get headers(): Headers {
    return (this.#headers ??= new Headers(this.#headersOf()))
  }

  get signal(): AbortSignal {
    return (this.#signal ??= this.#signalOf())
  }

  // What the runtime gives a request made from a URL, a method and headers alone.
  get cache(): RequestCache {
    return "default"
  }
  get credentials(): RequestCredentials {
    return "same-origin"
  }
  get destination(): RequestDestination {
    return ""
  }
  get integrity(): string {
    return ""
  }
  get keepalive(): boolean {
    return false
  }
  get mode(): RequestMode {
    return "cors"
  }
  get redirect(): RequestRedirect {
    return "follow"
  }
  get referrer(): string {
    return "about:client"
  }
  get referrerPolicy(): ReferrerPolicy {
    return ""
  }
  get isHistoryNavigation(): boolean {
    return false
  }
  get isReloadNavigation(): boolean {
    return false
  }
  /** A stream body is sent as it is read: what `fetch` asks of a request with one. */
  get duplex(): "half" {
    return "half"
  }

  get body(): ReadableStream<Uint8Array<ArrayBuffer>> {
    if (this.#stream === undefined) {
      const bytes = encoder.encode(this.#text)
      this.#stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
        start(controller) {
          controller.enqueue(bytes)
          controller.close()
        }
      })
    }
    return this.#stream
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#stream?.locked ?? false)
  }

  /** The text, once: a second read fails as it does on any request. */
  #take(): Promise<string> {
    if (this.bodyUsed) return Promise.reject(used())
    this.#used = true
    // A `body` handed out but not read yet is the body's one reader: this read drains it.
    return this.#stream === undefined ? Promise.resolve(this.#text) : new Response(this.#stream).text()
  }

  text(): Promise<string> {
    return this.#take()
  }

  json(): Promise<unknown> {
    return this.#take().then((text): unknown => JSON.parse(text))
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#take().then((text) => encoder.encode(text).buffer)
  }

  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#take().then((text) => encoder.encode(text))
  }

  blob(): Promise<Blob> {
    return this.#take().then((text) => new Blob([text], { type: this.headers.get("content-type") ?? "" }))
  }

  formData(): Promise<FormData> {
    return this.#take().then((text) =>
      new Response(text, { headers: { "content-type": this.headers.get("content-type") ?? "" } }).formData()
    )
  }

  clone(): UpstreamRequest {
    if (this.bodyUsed) throw used()
    const headers = this.#headers
    return new UpstreamRequest(
      this.url,
      {
        method: this.method,
        headers: headers === undefined ? this.#headersOf : () => headers,
        signal: () => this.signal
      },
      this.#text
    )
  }

  /** What `console.log` and `util.inspect` show: never the body, which may be large. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `UpstreamRequest { method: ${this.method}, url: ${this.url} }`
  }
}

// `instanceof Request` holds, and `Object.prototype.toString` says "Request"; every
// member the runtime's prototype defines is answered above, before it is reached.
Object.setPrototypeOf(UpstreamRequest.prototype, Request.prototype)
