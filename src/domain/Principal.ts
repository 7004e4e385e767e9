/**
 * Who a request acts for: the key and everything it belongs to.
 *
 * @since 0.1.0
 */
import type { Option } from "effect"
import type { Organization } from "./Organization.js"
import type { Team } from "./Team.js"
import type { TeamMembership } from "./TeamMembership.js"
import type { User } from "./User.js"
import type { VirtualKey } from "./VirtualKey.js"

/**
 * A key with its user, team, the membership of that user in that team (none when the
 * key has no user or team, or the user is not a member) and the team's organization.
 *
 * @since 0.1.0
 */
export interface Principal {
  readonly key: VirtualKey
  readonly user: Option.Option<User>
  readonly team: Option.Option<Team>
  readonly membership: Option.Option<TeamMembership>
  readonly organization: Option.Option<Organization>
}

/**
 * The caller of a management operation: the master key, or a virtual key.
 *
 * @since 0.1.0
 */
export type Caller = { readonly _tag: "Master" } | { readonly _tag: "Key"; readonly principal: Principal }

/** @since 0.1.0 */
export const master: Caller = { _tag: "Master" }
