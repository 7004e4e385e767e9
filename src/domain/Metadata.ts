/**
 * Free-form metadata attached to teams and keys: a JSON object.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** @since 0.1.0 */
export const Metadata = Schema.Record({ key: Schema.String, value: Schema.Unknown })
/** @since 0.1.0 */
export type Metadata = typeof Metadata.Type
