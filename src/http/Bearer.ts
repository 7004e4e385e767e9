/**
 * The bearer token of a request, and the master key check.
 *
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Option, Redacted } from "effect"

const BEARER = /^bearer\s+(\S+)\s*$/i

/**
 * The token of `Authorization: Bearer <token>`, redacted so it cannot reach a log by
 * accident; none when the header is missing or not a bearer token.
 *
 * @since 0.1.0
 */
export const fromRequest = (request: Request): Option.Option<Redacted.Redacted<string>> =>
  fromHeader(request.headers.get("authorization"))

/**
 * The token of an `Authorization` header value, as {@link fromRequest} reads it.
 *
 * @example
 * Bearer.fromHeader(req.headers.authorization ?? null) // Option<Redacted<string>>
 * @since 0.1.0
 */
export const fromHeader = (header: string | null): Option.Option<Redacted.Redacted<string>> => {
  if (header === null) return Option.none()
  const match = BEARER.exec(header)
  const token = match?.[1]
  return token === undefined ? Option.none() : Option.some(Redacted.make(token))
}

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest()

/**
 * A check of tokens against the master key in constant time: both sides are hashed
 * first, so neither the content nor the length of the master key leaks through timing.
 *
 * @example
 * const isMaster = Bearer.masterKeyCheck(Redacted.make(process.env.MASTER_KEY ?? ""))
 * isMaster(token) // boolean
 * @since 0.1.0
 */
export const masterKeyCheck = (
  masterKey: Redacted.Redacted<string>
): ((token: Redacted.Redacted<string>) => boolean) => {
  const raw = Redacted.value(masterKey)
  // An empty master key would let an empty token in: no master key then.
  if (raw.length === 0) return () => false
  const expected = digest(raw)
  return (token) => timingSafeEqual(digest(Redacted.value(token)), expected)
}
