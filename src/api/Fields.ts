/**
 * Field schemas shared by the management requests: LiteLLM's snake_case JSON on the
 * encoded side, domain types on the decoded side.
 *
 * Three kinds of optional field exist, and each request picks one per field:
 * - {@link optional} (create): absent or `null` both mean "none";
 * - {@link patch} (update, SPEC 4): absent leaves the value, `null` clears it, a value sets it;
 * - {@link patchNonNull} (update of a field that cannot be cleared): absent leaves it, `null` is refused.
 *
 * @since 0.1.0
 */
import { type Option, ParseResult, Schema } from "effect"
import * as BudgetDuration from "../domain/BudgetDuration.js"
import { KeyId, ModelName } from "../domain/Ids.js"
import type { KeyHash } from "../domain/Ids.js"
import { Limits } from "../domain/Limits.js"
import type { LimitsPatch } from "../domain/Limits.js"
import { Metadata } from "../domain/Metadata.js"
import * as Money from "../domain/Money.js"
import { displayPrefix, hashToken } from "../domain/Token.js"

/**
 * A field under its LiteLLM name that must be present.
 *
 * @since 0.1.0
 */
export const required = <A, I, R, const K extends string>(schema: Schema.Schema<A, I, R>, key: K) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

/**
 * A field of a create request: absent or `null` decode to `Option.none()`.
 *
 * @since 0.1.0
 */
export const optional = <A, I, R, const K extends string>(schema: Schema.Schema<A, I, R>, key: K) =>
  Schema.optionalWith(schema, { as: "Option", nullable: true, exact: true }).pipe(Schema.fromKey(key))

/**
 * A field of an update request (SPEC 4): absent stays absent (unchanged), `null` is
 * `Option.none()` (cleared), a value is `Option.some(value)` (set). `undefined` is refused.
 *
 * @since 0.1.0
 */
export const patch = <A, I, R, const K extends string>(schema: Schema.Schema<A, I, R>, key: K) =>
  Schema.optionalWith(Schema.OptionFromNullOr(schema), { exact: true }).pipe(Schema.fromKey(key))

/**
 * A field of an update request that cannot be cleared: absent stays absent, `null` is refused.
 *
 * @since 0.1.0
 */
export const patchNonNull = <A, I, R, const K extends string>(schema: Schema.Schema<A, I, R>, key: K) =>
  Schema.optionalWith(schema, { exact: true }).pipe(Schema.fromKey(key))

/** USD as a JSON number: finite, not negative, at most one billion. @since 0.1.0 */
export const Usd: Schema.Schema<Money.Money, number> = Money.Usd

/** A budget window or expiry length such as `"30d"` or `"1mo"`. @since 0.1.0 */
export const Duration: Schema.Schema<BudgetDuration.BudgetDuration, string> = BudgetDuration.FromString

/** The largest rate limit accepted (it fits every store's integer column). @since 0.1.0 */
export const MAX_COUNT = 2_147_483_647

/** A rate limit: a whole number, not negative. @since 0.1.0 */
export const Count = Schema.Number.pipe(
  Schema.int({ message: () => "must be a whole number" }),
  Schema.nonNegative({ message: () => "must not be negative" }),
  Schema.lessThanOrEqualTo(MAX_COUNT, { message: () => `must be at most ${MAX_COUNT}` })
)

/** A display name (team or organization alias, key alias). @since 0.1.0 */
export const Alias = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(256, { message: () => "must be at most 256 characters" }),
  Schema.pattern(/^[^\u0000-\u001f\u007f]+$/, { message: () => "must not contain control characters" })
)

/** An e-mail address, checked loosely (one `@`, no spaces). @since 0.1.0 */
export const Email = Schema.String.pipe(
  Schema.maxLength(320, { message: () => "must be at most 320 characters" }),
  Schema.pattern(/^[^\s@]+@[^\s@]+$/, { message: () => "must be an e-mail address" })
)

/** A list of model names; empty means every model. @since 0.1.0 */
export const Models = Schema.Array(ModelName).pipe(
  Schema.maxItems(1000, { message: () => "must list at most 1000 models" })
)

/** Models on update: `null` clears the list (every model allowed again). @since 0.1.0 */
export const ModelsOrClear = Schema.transform(Schema.NullOr(Models), Schema.typeSchema(Models), {
  strict: true,
  decode: (models) => models ?? [],
  encode: (models) => models
})

/** Free-form JSON object metadata. @since 0.1.0 */
export const Meta = Metadata

/** Metadata on update: `null` clears it to `{}`. @since 0.1.0 */
export const MetaOrClear = Schema.transform(Schema.NullOr(Metadata), Schema.typeSchema(Metadata), {
  strict: true,
  decode: (metadata) => metadata ?? {},
  encode: (metadata) => metadata
})

/**
 * A key named by a caller: by its plaintext token (`sk-...`, hashed at once so the
 * plaintext goes no further) or by its public `token_id`.
 *
 * @since 0.1.0
 */
export type KeyRef =
  | { readonly _tag: "Token"; readonly hash: KeyHash; readonly label: string }
  | { readonly _tag: "KeyId"; readonly keyId: KeyId }

const isKeyRef = (u: unknown): u is KeyRef =>
  typeof u === "object" &&
  u !== null &&
  "_tag" in u &&
  ((u._tag === "Token" && "hash" in u && "label" in u) || (u._tag === "KeyId" && "keyId" in u))

const decodeKeyId = ParseResult.decodeUnknownEither(KeyId)

const tokenRef = (token: string): KeyRef => ({
  _tag: "Token",
  hash: hashToken(token),
  label: displayPrefix(token)
})

const idRef = (keyId: KeyId): KeyRef => ({ _tag: "KeyId", keyId })

/**
 * A `key` parameter: the plaintext key or its `token_id`. It decodes one way only: a
 * hashed token cannot be turned back into its plaintext.
 *
 * @example
 * Schema.decodeUnknownSync(KeyRefFromString)("sk-abc...") // { _tag: "Token", hash, label: "sk-...." }
 * @since 0.1.0
 */
export const KeyRefFromString: Schema.Schema<KeyRef, string> = Schema.transformOrFail(
  Schema.String,
  Schema.declare(isKeyRef, { identifier: "KeyRef" }),
  {
    strict: true,
    decode: (input, _options, ast) => {
      if (input.startsWith("sk-")) {
        return input.length > 3 && input.length <= 512
          ? ParseResult.succeed(tokenRef(input))
          : ParseResult.fail(new ParseResult.Type(ast, input, "must be a key (sk-...) or a token_id"))
      }
      const keyId = decodeKeyId(input)
      return keyId._tag === "Right"
        ? ParseResult.succeed(idRef(keyId.right))
        : ParseResult.fail(new ParseResult.Type(ast, input, "must be a key (sk-...) or a token_id"))
    },
    encode: (ref, _options, ast) =>
      ref._tag === "KeyId"
        ? ParseResult.succeed(ref.keyId)
        : ParseResult.fail(new ParseResult.Forbidden(ast, ref, "a hashed key cannot be encoded back"))
  }
)

/** How an error or a log names a key reference without revealing it. @since 0.1.0 */
export const keyRefLabel = (ref: KeyRef): string => (ref._tag === "Token" ? ref.label : ref.keyId)

/** A date filter: an ISO 8601 date or date-time. @since 0.1.0 */
export const IsoDate = Schema.DateTimeUtc.annotations({
  message: () => "must be an ISO 8601 date such as 2025-01-31 or 2025-01-31T12:00:00Z"
})

/** The limit fields of a create request (absent or `null` = no limit). @since 0.1.0 */
export const limitFields = {
  maxBudget: optional(Usd, "max_budget"),
  softBudget: optional(Usd, "soft_budget"),
  budgetDuration: optional(Duration, "budget_duration"),
  tpmLimit: optional(Count, "tpm_limit"),
  rpmLimit: optional(Count, "rpm_limit"),
  maxParallelRequests: optional(Count, "max_parallel_requests")
}

/** The limit fields of an update request (SPEC 4). @since 0.1.0 */
export const limitPatchFields = {
  maxBudget: patch(Usd, "max_budget"),
  softBudget: patch(Usd, "soft_budget"),
  budgetDuration: patch(Duration, "budget_duration"),
  tpmLimit: patch(Count, "tpm_limit"),
  rpmLimit: patch(Count, "rpm_limit"),
  maxParallelRequests: patch(Count, "max_parallel_requests")
}

/** The decoded limit fields of a create request. @since 0.1.0 */
export interface LimitFields {
  readonly maxBudget: Option.Option<Money.Money>
  readonly softBudget: Option.Option<Money.Money>
  readonly budgetDuration: Option.Option<BudgetDuration.BudgetDuration>
  readonly tpmLimit: Option.Option<number>
  readonly rpmLimit: Option.Option<number>
  readonly maxParallelRequests: Option.Option<number>
}

/** The limits a create request asks for. @since 0.1.0 */
export const toLimits = (fields: LimitFields): Limits =>
  new Limits({
    maxBudget: fields.maxBudget,
    softBudget: fields.softBudget,
    budgetDuration: fields.budgetDuration,
    tpmLimit: fields.tpmLimit,
    rpmLimit: fields.rpmLimit,
    maxParallelRequests: fields.maxParallelRequests
  })

/**
 * The limits patch of an update request, carrying only the fields that were sent.
 *
 * @since 0.1.0
 */
export const toLimitsPatch = (fields: LimitsPatch): LimitsPatch => ({
  ...(fields.maxBudget === undefined ? {} : { maxBudget: fields.maxBudget }),
  ...(fields.softBudget === undefined ? {} : { softBudget: fields.softBudget }),
  ...(fields.budgetDuration === undefined ? {} : { budgetDuration: fields.budgetDuration }),
  ...(fields.tpmLimit === undefined ? {} : { tpmLimit: fields.tpmLimit }),
  ...(fields.rpmLimit === undefined ? {} : { rpmLimit: fields.rpmLimit }),
  ...(fields.maxParallelRequests === undefined ? {} : { maxParallelRequests: fields.maxParallelRequests })
})
