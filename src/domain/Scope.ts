/**
 * The scopes a request can be bound by (SPEC 3), in the order refusals are reported.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { EndUserId, KeyHash, OrganizationId, TeamId, UserId } from "./Ids.js"

/** @since 0.1.0 */
export const ScopeKind = Schema.Literal(
  "key",
  "user",
  "membership",
  "team",
  "organization",
  "end_user",
  "global"
)
/** @since 0.1.0 */
export type ScopeKind = typeof ScopeKind.Type

/**
 * One scope of a request. A membership is named by its team and user. A key carries
 * a label (its alias or display prefix such as `sk-...x7Qa`) because its id, a hash,
 * must never be shown.
 *
 * @since 0.1.0
 */
export type ScopeRef =
  | { readonly kind: "key"; readonly id: KeyHash; readonly label: string }
  | { readonly kind: "user"; readonly id: UserId }
  | { readonly kind: "membership"; readonly teamId: TeamId; readonly userId: UserId }
  | { readonly kind: "team"; readonly id: TeamId }
  | { readonly kind: "organization"; readonly id: OrganizationId }
  | { readonly kind: "end_user"; readonly id: EndUserId }
  | { readonly kind: "global" }

/** Report order: the first binding scope in this order names a refusal. @since 0.1.0 */
export const ORDER: ReadonlyArray<ScopeKind> = [
  "key",
  "user",
  "membership",
  "team",
  "organization",
  "end_user",
  "global"
]

/**
 * A stable, unambiguous string for a scope, used as a map key and a store key.
 * The membership form length-prefixes the team id so no id can collide.
 *
 * @since 0.1.0
 */
export const key = (ref: ScopeRef): string => {
  switch (ref.kind) {
    case "membership":
      return `membership:${ref.teamId.length}:${ref.teamId}${ref.userId}`
    case "global":
      return "global:"
    default:
      return `${ref.kind}:${ref.id}`
  }
}

/**
 * The id a refusal shows. A key is shown by its label, never by its hash.
 *
 * @since 0.1.0
 */
export const displayId = (ref: ScopeRef): string => {
  switch (ref.kind) {
    case "membership":
      return `${ref.teamId}/${ref.userId}`
    case "global":
      return "global"
    case "key":
      return ref.label
    default:
      return ref.id
  }
}
