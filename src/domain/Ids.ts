/**
 * Branded identifiers. Every id is a non-empty string of at most 256 printable
 * characters, so an id can never smuggle a control character into a log line or a
 * header.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const Ident = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(256, { message: () => "must be at most 256 characters" }),
  Schema.pattern(/^[^\u0000-\u001f\u007f]+$/, { message: () => "must not contain control characters" })
)

/** @since 0.1.0 */
export const TeamId = Ident.pipe(Schema.brand("TeamId"))
/** @since 0.1.0 */
export type TeamId = typeof TeamId.Type

/** @since 0.1.0 */
export const UserId = Ident.pipe(Schema.brand("UserId"))
/** @since 0.1.0 */
export type UserId = typeof UserId.Type

/** @since 0.1.0 */
export const OrganizationId = Ident.pipe(Schema.brand("OrganizationId"))
/** @since 0.1.0 */
export type OrganizationId = typeof OrganizationId.Type

/** @since 0.1.0 */
export const BudgetId = Ident.pipe(Schema.brand("BudgetId"))
/** @since 0.1.0 */
export type BudgetId = typeof BudgetId.Type

/** The `user` field of an OpenAI request: a customer of the caller. @since 0.1.0 */
export const EndUserId = Ident.pipe(Schema.brand("EndUserId"))
/** @since 0.1.0 */
export type EndUserId = typeof EndUserId.Type

/**
 * The SHA-256 hex digest of a virtual key: the only form in which a key is stored.
 * LiteLLM calls it `token`/`token_id`.
 *
 * @since 0.1.0
 */
export const KeyHash = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/), Schema.brand("KeyHash"))
/** @since 0.1.0 */
export type KeyHash = typeof KeyHash.Type

/**
 * The public id of a virtual key (LiteLLM's `token_id`): random, unrelated to the
 * token, so it can be shown and used to manage the key without revealing anything.
 *
 * @since 0.1.0
 */
export const KeyId = Ident.pipe(Schema.brand("KeyId"))
/** @since 0.1.0 */
export type KeyId = typeof KeyId.Type

/** @since 0.1.0 */
export const HoldId = Ident.pipe(Schema.brand("HoldId"))
/** @since 0.1.0 */
export type HoldId = typeof HoldId.Type

/** @since 0.1.0 */
export const RequestId = Ident.pipe(Schema.brand("RequestId"))
/** @since 0.1.0 */
export type RequestId = typeof RequestId.Type

/** A model name as callers send it (`gpt-4o-mini`, `openai/gpt-4o`). @since 0.1.0 */
export const ModelName = Ident
