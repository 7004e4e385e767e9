/** @since 0.1.0 */
import { Schema } from "effect"
import { Budget } from "./Budget.js"
import { TeamId, UserId } from "./Ids.js"
import { SpendSnapshot } from "./Spend.js"

/** @since 0.1.0 */
export const MemberRole = Schema.Literal("admin", "user")
/** @since 0.1.0 */
export type MemberRole = typeof MemberRole.Type

/**
 * A user's place in a team. `budget` is `Option.none()` when the member has no cap
 * of their own: then only the team pool (and the other scopes) bind.
 *
 * @since 0.1.0
 */
export class TeamMembership extends Schema.Class<TeamMembership>("TeamMembership")({
  teamId: TeamId,
  userId: UserId,
  role: MemberRole,
  spend: SpendSnapshot,
  budget: Schema.OptionFromSelf(Budget)
}) {}
