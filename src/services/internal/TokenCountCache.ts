/**
 * Remembered token counts of long texts. A chat sends its whole history with every
 * turn, and tools and system prompts repeat on every request, so most of a long prompt
 * has been counted before. Counting costs about half a microsecond per token (a
 * 100,000-token prompt, 55 ms of CPU with the event loop blocked); a SHA-256 digest of
 * the same text costs about a hundredth of that. Texts are remembered by their digest,
 * never by their content, so no prompt is kept in memory past its request.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"

/** Texts shorter than this are counted directly: for them a digest costs as much as the count. */
export const MIN_CACHED_LENGTH = 512

/** @since 0.1.0 */
export interface TokenCountCache {
  /** The tokens of `text`, counted once per distinct long text while it stays remembered. */
  readonly count: (text: string) => number
  /**
   * The remembered count of `text`; else how to remember its count once made elsewhere
   * (the text is digested once for both; a short text is never remembered).
   */
  readonly recall: (text: string) => number | ((tokens: number) => void)
  /** How many counts are remembered. */
  readonly size: () => number
}

/** What `recall` answers for a text never remembered (a short one): remembering does nothing. */
const forgetting = (): void => {}

/**
 * A cache of at most `capacity` counts over `count`; the least recently used is
 * forgotten first.
 *
 * @example
 * const cache = make(countText, 4096)
 * cache.count(longSystemPrompt) // counted
 * cache.count(longSystemPrompt) // remembered
 * @since 0.1.0
 */
export const make = (count: (text: string) => number, capacity: number): TokenCountCache => {
  // A Map iterates in insertion order: re-inserting on every hit keeps the oldest first.
  const counts = new Map<string, number>()
  const cached = (text: string) => text.length >= MIN_CACHED_LENGTH && capacity >= 1
  const digestOf = (text: string) => createHash("sha256").update(text).digest("base64")
  const lookup = (digest: string) => {
    const known = counts.get(digest)
    if (known !== undefined) {
      counts.delete(digest)
      counts.set(digest, known)
    }
    return known
  }
  const store = (digest: string, tokens: number) => {
    if (counts.size >= capacity) {
      const oldest = counts.keys().next()
      if (oldest.done !== true) counts.delete(oldest.value)
    }
    counts.set(digest, tokens)
  }
  return {
    count: (text) => {
      if (!cached(text)) return count(text)
      const digest = digestOf(text)
      const known = lookup(digest)
      if (known !== undefined) return known
      const tokens = count(text)
      store(digest, tokens)
      return tokens
    },
    recall: (text) => {
      if (!cached(text)) return forgetting
      const digest = digestOf(text)
      return lookup(digest) ?? ((tokens) => store(digest, tokens))
    },
    size: () => counts.size
  }
}
