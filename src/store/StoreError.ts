/**
 * What any store read or write may fail with: the store is unreachable, or a row it
 * returned cannot be decoded.
 *
 * @since 0.1.0
 */
import type { CorruptRecord, StoreUnavailable } from "../domain/Errors.js"

/** @since 0.1.0 */
export type StoreError = StoreUnavailable | CorruptRecord
