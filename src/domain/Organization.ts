/** @since 0.1.0 */
import { Schema } from "effect"
import { OrganizationId } from "./Ids.js"
import { Limits } from "./Limits.js"
import { SpendSnapshot } from "./Spend.js"

/** An organization: the widest scope above teams. @since 0.1.0 */
export class Organization extends Schema.Class<Organization>("Organization")({
  organizationId: OrganizationId,
  organizationAlias: Schema.String,
  limits: Limits,
  /** Models its teams may use; empty means all. */
  models: Schema.Array(Schema.String),
  blocked: Schema.Boolean,
  spend: SpendSnapshot,
  createdAt: Schema.DateTimeUtcFromSelf
}) {}
