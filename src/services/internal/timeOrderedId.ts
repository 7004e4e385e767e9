/**
 * Request and hold ids that sort by creation time (UUID version 7: 48 bits of
 * milliseconds, then random bits). The SQL stores key their hold and spend log rows by
 * these ids: a fresh id lands at the end of the index instead of on a random page, which
 * halves what a commit writes on SQLite and keeps PostgreSQL's indexes small and warm.
 *
 * @since 0.1.0
 */

/**
 * A version 7 UUID for the wall-clock millisecond `now`; unique by its 74 random bits,
 * ordered by `now`.
 *
 * @example
 * const id = timeOrderedId(Date.now()) // "0192f6c8-3a1b-7c3e-9f2d-5b8e1a4c7d90"
 * @since 0.1.0
 */
export const timeOrderedId = (now: number): string => {
  const random = crypto.randomUUID()
  const time = Math.max(0, Math.min(Math.floor(now), 0xffff_ffff_ffff))
    .toString(16)
    .padStart(12, "0")
  return `${time.slice(0, 8)}-${time.slice(8)}-7${random.slice(15)}`
}
