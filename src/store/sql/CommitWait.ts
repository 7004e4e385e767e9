/**
 * How long a ledger step on the embedded store waits for other steps to share its
 * commit (`SqliteFastPath.ts`).
 *
 * A commit costs far more than a step (tens of microseconds against a few), so steps
 * that queue during one turn of the event loop commit together. But one turn can run
 * many requests' work: a burst of upstream answers read at once is handled in a single
 * turn, and the first of them would wait for all the others before its commit. So the
 * wait follows the load. While the event loop is mostly idle a step waits at most
 * {@link IDLE_WAIT_MILLIS} for company, and then commits with whatever joined it: the
 * process has CPU to spare for the extra commits, and its callers get their answers
 * sooner. The busier the loop, the longer the wait, `IDLE_WAIT_MILLIS / (1 - u)` for
 * a utilisation `u`, up to the whole turn once the loop is saturated, where every
 * commit saved is CPU given back to requests.
 *
 * @since 0.1.0
 */
import { performance } from "node:perf_hooks"

/** The longest a step waits for company while the event loop is idle. @since 0.1.0 */
export const IDLE_WAIT_MILLIS = 0.1

/** How often the event loop's utilisation is read again. @since 0.1.0 */
export const SAMPLE_MILLIS = 100

/** From this utilisation on, a step waits for the end of the turn. */
const SATURATED = 0.99

/**
 * The event loop's utilisation (0 to 1) at a time in milliseconds on `performance.now()`'s
 * scale; called as each step queues, so it must be cheap.
 *
 * @since 0.1.0
 */
export type Load = (now: number) => number

/**
 * The longest a step waits for company at utilisation `utilization`.
 *
 * @example
 * import * as CommitWait from "./CommitWait.js"
 *
 * CommitWait.limit(0) // 0.1
 * CommitWait.limit(0.5) // 0.2
 * CommitWait.limit(1) // Infinity: the end of the turn decides
 * @since 0.1.0
 */
export const limit = (utilization: number): number =>
  utilization >= SATURATED ? Number.POSITIVE_INFINITY : IDLE_WAIT_MILLIS / (1 - Math.max(0, utilization))

/**
 * The event loop's utilisation over the last {@link SAMPLE_MILLIS}, read again at most
 * that often (`performance.eventLoopUtilization`).
 *
 * @example
 * import { performance } from "node:perf_hooks"
 * import * as CommitWait from "./CommitWait.js"
 *
 * const load = CommitWait.eventLoopLoad()
 * const wait = CommitWait.limit(load(performance.now()))
 * @since 0.1.0
 */
export const eventLoopLoad = (): Load => {
  let previous = performance.eventLoopUtilization()
  let sampledAt = performance.now()
  let utilization = 0
  return (now) => {
    if (now - sampledAt >= SAMPLE_MILLIS) {
      const current = performance.eventLoopUtilization()
      utilization = performance.eventLoopUtilization(current, previous).utilization
      previous = current
      sampledAt = now
    }
    return utilization
  }
}
