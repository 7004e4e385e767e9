/**
 * Virtual key tokens. A token is shown once, when it is made; the store keeps only
 * its SHA-256 digest.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import { KeyHash } from "./Ids.js"

/**
 * The SHA-256 hex digest under which a token is stored and looked up.
 *
 * @example
 * const hash = hashToken("sk-...") // 64 hex characters
 * @since 0.1.0
 */
export const hashToken = (token: string): KeyHash =>
  // A SHA-256 hex digest is a KeyHash by construction: no need to re-validate it on the hot path.
  KeyHash.make(createHash("sha256").update(token).digest("hex"), { disableValidation: true })

/** A new token: `sk-` and 32 random bytes in base64url. @since 0.1.0 */
export const generateToken = (): string => `sk-${randomBytes(32).toString("base64url")}`

/** How people recognise a key without seeing it: `sk-...` and its last 4 characters. @since 0.1.0 */
export const displayPrefix = (token: string): string => `sk-...${token.slice(-4)}`
