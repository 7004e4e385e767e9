/**
 * Every failure of the SDK, as tagged classes in the Effect error channel (SPEC 9).
 * Messages never contain a token, a hash or a master key.
 *
 * @since 0.1.0
 */
import { Option, Schema } from "effect"
import * as Money from "./Money.js"
import { ScopeKind } from "./Scope.js"

/**
 * The bearer key is missing, malformed or unknown (401).
 *
 * @since 0.1.0
 */
export class AuthenticationFailed extends Schema.TaggedError<AuthenticationFailed>()("AuthenticationFailed", {
  reason: Schema.Literal("missing", "unknown")
}) {
  override get message(): string {
    return this.reason === "missing" ? "No API key was given." : "The API key is not valid."
  }
}

/** The key has passed its expiry time (401). @since 0.1.0 */
export class KeyExpired extends Schema.TaggedError<KeyExpired>()("KeyExpired", {
  keyLabel: Schema.String,
  expiredAt: Schema.DateTimeUtcFromSelf
}) {
  override get message(): string {
    return `Key ${this.keyLabel} expired at ${this.expiredAt.toString()}.`
  }
}

/** A key, user, team, organization or end user is blocked (403). @since 0.1.0 */
export class Blocked extends Schema.TaggedError<Blocked>()("Blocked", {
  scope: ScopeKind,
  id: Schema.String
}) {
  override get message(): string {
    return `The ${this.scope.replace("_", " ")} ${this.id} is blocked.`
  }
}

/** The model is outside the allow-list of the key, team or organization (403). @since 0.1.0 */
export class ModelNotAllowed extends Schema.TaggedError<ModelNotAllowed>()("ModelNotAllowed", {
  model: Schema.String,
  scope: ScopeKind,
  id: Schema.String
}) {
  override get message(): string {
    return `The ${this.scope.replace("_", " ")} ${this.id} may not use model ${JSON.stringify(this.model)}.`
  }
}

/**
 * A budget would be exceeded (402). Names the first scope that refuses, what it has
 * spent (and holds) in its window, its cap, what the request needed and when the
 * window resets.
 *
 * @since 0.1.0
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  scope: ScopeKind,
  id: Schema.String,
  spend: Money.Nanos,
  held: Money.Nanos,
  maxBudget: Money.Nanos,
  requested: Money.Nanos,
  resetAt: Schema.OptionFromSelf(Schema.DateTimeUtcFromSelf)
}) {
  override get message(): string {
    const reset = Option.match(this.resetAt, {
      onNone: () => "",
      onSome: (at) => ` It resets at ${at.toString()}.`
    })
    return (
      `Budget exceeded for ${this.scope.replace("_", " ")} ${this.id}: ` +
      `spent ${Money.format(this.spend)} of ${Money.format(this.maxBudget)}` +
      (this.held > 0n ? ` (${Money.format(this.held)} held by requests in flight)` : "") +
      `, this request needs up to ${Money.format(this.requested)}.${reset}`
    )
  }
}

/**
 * A rate limit refuses the request (429). Names the first scope that refuses, which
 * limit, and how long to wait. The optional fields feed the `x-ratelimit-*` headers:
 * for requests and for tokens, the limit with the least left and what it has left
 * (this request not counted).
 * `requestedTokens` is set when the request alone needs more tokens than the limit
 * allows in a minute, which no wait can cure.
 *
 * @since 0.1.0
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  scope: ScopeKind,
  id: Schema.String,
  limitType: Schema.Literal("requests", "tokens", "parallel_requests"),
  limit: Schema.Int,
  retryAfterSeconds: Schema.Int,
  limitRequests: Schema.optional(Schema.Int),
  remainingRequests: Schema.optional(Schema.Int),
  limitTokens: Schema.optional(Schema.Int),
  remainingTokens: Schema.optional(Schema.Int),
  requestedTokens: Schema.optional(Schema.Int)
}) {
  override get message(): string {
    const where = `${this.scope.replace("_", " ")} ${this.id}`
    if (this.requestedTokens !== undefined) {
      return (
        `This request may use up to ${this.requestedTokens} tokens, more than the ${this.limit} ` +
        `tokens a minute allowed for ${where}. Lower max_tokens or shorten the prompt.`
      )
    }
    const unit = this.limitType === "parallel_requests" ? "requests at once" : `${this.limitType} a minute`
    return `Rate limit exceeded for ${where}: ${this.limit} ${unit}. Retry after ${this.retryAfterSeconds}s.`
  }
}

/** A request or a field is invalid (400). `path` names the field, e.g. `member.user_id`. @since 0.1.0 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.path === "" ? this.detail : `${this.path}: ${this.detail}`
  }
}

/** The model has no known price and is not configured as free (400). @since 0.1.0 */
export class PriceUnknown extends Schema.TaggedError<PriceUnknown>()("PriceUnknown", {
  model: Schema.String
}) {
  override get message(): string {
    return (
      `No price is known for model ${JSON.stringify(this.model)}. ` +
      "Configure its price (input and output cost per token) or mark it as free."
    )
  }
}

/** @since 0.1.0 */
export const EntityKind = Schema.Literal(
  "team",
  "user",
  "membership",
  "key",
  "organization",
  "end_user",
  "budget",
  "hold",
  "model",
  "spend_log"
)
/** @since 0.1.0 */
export type EntityKind = typeof EntityKind.Type

/** An entity named by the caller does not exist (404). @since 0.1.0 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  entity: EntityKind,
  id: Schema.String
}) {
  override get message(): string {
    return `No ${this.entity.replace("_", " ")} ${this.id} exists.`
  }
}

/** An entity with that id exists already (400). @since 0.1.0 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  entity: EntityKind,
  id: Schema.String
}) {
  override get message(): string {
    return `A ${this.entity.replace("_", " ")} ${this.id} exists already.`
  }
}

/** The caller may not manage this entity (403). @since 0.1.0 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  action: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Not allowed to ${this.action}: ${this.reason}.`
  }
}

/** The store cannot be reached; requests fail closed by default (503). @since 0.1.0 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  operation: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `The budget store is unavailable (${this.operation}).`
  }
}

/**
 * A stored row cannot be decoded (500). Only requests that need that row fail.
 *
 * @since 0.1.0
 */
export class CorruptRecord extends Schema.TaggedError<CorruptRecord>()("CorruptRecord", {
  entity: EntityKind,
  id: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The stored ${this.entity.replace("_", " ")} ${this.id} cannot be read: ${this.detail}`
  }
}

/** A hold was settled or released already, so it cannot be closed again. @since 0.1.0 */
export class HoldClosed extends Schema.TaggedError<HoldClosed>()("HoldClosed", {
  holdId: Schema.String,
  state: Schema.Literal("settled", "released")
}) {
  override get message(): string {
    return `Hold ${this.holdId} was ${this.state} already.`
  }
}

/** The upstream model provider failed (its status, or 502). @since 0.1.0 */
export class UpstreamFailed extends Schema.TaggedError<UpstreamFailed>()("UpstreamFailed", {
  status: Schema.Int,
  detail: Schema.String
}) {
  override get message(): string {
    return `The upstream provider failed (${this.status}): ${this.detail}`
  }
}

/**
 * One delivery attempt of a budget event webhook failed. It never reaches a request:
 * the sender retries it (when `retryable`) or logs it.
 *
 * @since 0.1.0
 */
export class WebhookFailed extends Schema.TaggedError<WebhookFailed>()("WebhookFailed", {
  reason: Schema.String,
  retryable: Schema.Boolean
}) {
  override get message(): string {
    return `The budget event webhook failed: ${this.reason}`
  }
}

/** Every error of the SDK. @since 0.1.0 */
export type TeamBudgetError =
  | AuthenticationFailed
  | KeyExpired
  | Blocked
  | ModelNotAllowed
  | BudgetExceeded
  | RateLimited
  | InvalidRequest
  | PriceUnknown
  | NotFound
  | AlreadyExists
  | Forbidden
  | StoreUnavailable
  | CorruptRecord
  | HoldClosed
  | UpstreamFailed

/** The OpenAI-style error body of SPEC 9 and its status. @since 0.1.0 */
export interface HttpError {
  readonly status: number
  readonly body: {
    readonly error: {
      readonly message: string
      readonly type: string
      readonly code: string
      readonly param: string | null
    }
  }
}

const http = (status: number, type: string, code: string, message: string, param: string | null = null) => ({
  status,
  body: { error: { message, type, code, param } }
})

/**
 * Maps an error to its HTTP status and OpenAI-style body (SPEC 9).
 *
 * @example
 * const { status, body } = toHttpError(new NotFound({ entity: "team", id: "t1" })) // 404
 * @since 0.1.0
 */
export const toHttpError = (error: TeamBudgetError): HttpError => {
  switch (error._tag) {
    case "AuthenticationFailed":
      return http(401, "authentication_error", `key_${error.reason}`, error.message)
    case "KeyExpired":
      return http(401, "authentication_error", "key_expired", error.message)
    case "Blocked":
      return http(403, "permission_error", `${error.scope}_blocked`, error.message)
    case "ModelNotAllowed":
      return http(403, "permission_error", "model_not_allowed", error.message, "model")
    case "BudgetExceeded":
      return http(402, "budget_exceeded", `${error.scope}_budget_exceeded`, error.message)
    case "RateLimited":
      return http(429, "rate_limit_error", `${error.scope}_rate_limited`, error.message)
    case "InvalidRequest":
      return http(400, "invalid_request_error", "invalid_field", error.message, error.path || null)
    case "PriceUnknown":
      return http(400, "invalid_request_error", "model_price_unknown", error.message, "model")
    case "NotFound":
      return http(404, "not_found_error", `${error.entity}_not_found`, error.message)
    case "AlreadyExists":
      return http(400, "invalid_request_error", `${error.entity}_exists`, error.message)
    case "Forbidden":
      return http(403, "permission_error", "forbidden", error.message)
    case "StoreUnavailable":
      return http(503, "service_unavailable", "store_unavailable", error.message)
    case "CorruptRecord":
      return http(500, "corrupt_record", `${error.entity}_corrupt`, error.message)
    case "HoldClosed":
      return http(409, "invalid_request_error", "hold_closed", error.message)
    case "UpstreamFailed":
      return http(
        error.status >= 400 && error.status <= 599 ? error.status : 502,
        "upstream_error",
        "upstream_failed",
        error.message
      )
  }
}
