/** @since 0.1.0 */
import { Schema } from "effect"
import { OrganizationId, TeamId } from "./Ids.js"
import { Limits } from "./Limits.js"
import { Metadata } from "./Metadata.js"
import { SpendSnapshot } from "./Spend.js"

/** A team and its shared budget pool. @since 0.1.0 */
export class Team extends Schema.Class<Team>("Team")({
  teamId: TeamId,
  teamAlias: Schema.String,
  organizationId: Schema.OptionFromSelf(OrganizationId),
  limits: Limits,
  /** Models the team's keys may use; empty means all. */
  models: Schema.Array(Schema.String),
  blocked: Schema.Boolean,
  metadata: Metadata,
  spend: SpendSnapshot,
  createdAt: Schema.DateTimeUtcFromSelf
}) {}
