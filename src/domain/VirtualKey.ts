/** @since 0.1.0 */
import { Schema } from "effect"
import { KeyHash, KeyId, TeamId, UserId } from "./Ids.js"
import { Limits } from "./Limits.js"
import { Metadata } from "./Metadata.js"
import { SpendSnapshot } from "./Spend.js"

/**
 * A virtual key. Only the SHA-256 hash of the token is kept; `displayPrefix`
 * (`sk-...x7Qa`) lets people recognise a key without revealing it.
 *
 * @since 0.1.0
 */
export class VirtualKey extends Schema.Class<VirtualKey>("VirtualKey")({
  keyId: KeyId,
  hash: KeyHash,
  keyAlias: Schema.OptionFromSelf(Schema.String),
  displayPrefix: Schema.String,
  userId: Schema.OptionFromSelf(UserId),
  teamId: Schema.OptionFromSelf(TeamId),
  limits: Limits,
  /** Models the key may use; empty means all its team (or user) may use. */
  models: Schema.Array(Schema.String),
  expires: Schema.OptionFromSelf(Schema.DateTimeUtcFromSelf),
  blocked: Schema.Boolean,
  metadata: Metadata,
  spend: SpendSnapshot,
  createdAt: Schema.DateTimeUtcFromSelf
}) {}

/** The name refusals and logs show for a key: its alias, else its display prefix. @since 0.1.0 */
export const label = (key: VirtualKey): string =>
  key.keyAlias._tag === "Some" ? key.keyAlias.value : key.displayPrefix
