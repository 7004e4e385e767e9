/** @since 0.1.0 */
import { Schema } from "effect"
import { EndUserId, KeyHash, KeyId, OrganizationId, RequestId, TeamId, UserId } from "./Ids.js"
import * as Money from "./Money.js"

/** @since 0.1.0 */
export const SpendStatus = Schema.Literal("success", "partial", "failure")
/** @since 0.1.0 */
export type SpendStatus = typeof SpendStatus.Type

/**
 * One settled request. Written in the same atomic step as the counters it moved,
 * so the log and the counters always agree.
 *
 * @since 0.1.0
 */
export class SpendLog extends Schema.Class<SpendLog>("SpendLog")({
  requestId: RequestId,
  keyId: KeyId,
  keyHash: KeyHash,
  keyLabel: Schema.String,
  userId: Schema.OptionFromSelf(UserId),
  teamId: Schema.OptionFromSelf(TeamId),
  organizationId: Schema.OptionFromSelf(OrganizationId),
  endUser: Schema.OptionFromSelf(EndUserId),
  model: Schema.String,
  promptTokens: Schema.Int.pipe(Schema.nonNegative()),
  completionTokens: Schema.Int.pipe(Schema.nonNegative()),
  cost: Money.Nanos,
  startedAt: Schema.DateTimeUtcFromSelf,
  endedAt: Schema.DateTimeUtcFromSelf,
  status: SpendStatus
}) {}
