/**
 * A `fetch` client for the HTTP tests that remembers every response it saw (bodies
 * and headers), so a test can prove that none of them reveals a secret.
 */
import { MASTER_KEY } from "./httpHarness.js"

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

/** A value inside parsed JSON, by path; `undefined` where there is none. */
export const at = (value: unknown, ...path: ReadonlyArray<string | number>): unknown => {
  let current = value
  for (const step of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = Reflect.get(current, step)
  }
  return current
}

export const text = (value: unknown, ...path: ReadonlyArray<string | number>): string => {
  const found = at(value, ...path)
  if (typeof found !== "string") throw new Error(`no string at ${path.join(".")}: ${JSON.stringify(value)}`)
  return found
}

const parse = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

export interface Client {
  /** Response bodies and header lines seen, except the one-time `/key/generate` answers. */
  readonly seen: Array<string>
  readonly admin: (
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    options?: { key?: string; raw?: string }
  ) => Promise<Reply>
  readonly llm: (path: string, body: unknown, key: string, headers?: Record<string, string>) => Promise<Reply>
  /** A streamed call read to its end, as bytes. */
  readonly stream: (
    body: unknown,
    key: string,
    headers?: Record<string, string>
  ) => Promise<{ status: number; headers: Headers; bytes: Buffer }>
  /** Generates a key as the master and returns its plaintext. */
  readonly generateKey: (body: Record<string, unknown>) => Promise<string>
}

export const make = (baseUrl: string): Client => {
  const seen: Array<string> = []
  const remember = (response: Response, body: string, keep = true) => {
    if (keep) seen.push(body)
    response.headers.forEach((value, name) => seen.push(`${name}: ${value}`))
  }

  const admin: Client["admin"] = async (method, path, body, options = {}) => {
    const response = await fetch(`${baseUrl}/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.key ?? MASTER_KEY}`,
        ...(method === "POST" ? { "content-type": "application/json" } : {})
      },
      ...(method === "POST" ? { body: options.raw ?? JSON.stringify(body) } : {})
    })
    const reply = await response.text()
    remember(response, reply, !(path === "/key/generate" && response.status === 200))
    return { status: response.status, headers: response.headers, text: reply, json: parse(reply) }
  }

  const llm: Client["llm"] = async (path, body, key, headers = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
    const reply = await response.text()
    remember(response, reply)
    return { status: response.status, headers: response.headers, text: reply, json: parse(reply) }
  }

  const stream: Client["stream"] = async (body, key, headers = {}) => {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
    const bytes = Buffer.from(await response.arrayBuffer())
    remember(response, bytes.toString("utf8"))
    return { status: response.status, headers: response.headers, bytes }
  }

  const generateKey: Client["generateKey"] = async (body) => {
    const reply = await admin("POST", "/key/generate", body)
    if (reply.status !== 200) throw new Error(`key/generate failed: ${reply.text}`)
    return text(reply.json, "key")
  }

  return { seen, admin, llm, stream, generateKey }
}
