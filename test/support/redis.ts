/**
 * Redis for tests: the shared server at 127.0.0.1:6379, never stopped by a test. Each
 * store a test makes uses a key prefix of its own, so tests never see each other's
 * counters.
 *
 * When the server cannot be reached, suites declared with `describeRedis` are skipped
 * with a printed reason, except on CI (`CI` set), where that is a failure.
 */
import { describe } from "@effect/vitest"
import { reachable } from "./reachable.js"

export const REDIS_HOST = "127.0.0.1"
export const REDIS_PORT = 6379

/** Whether the shared Redis server answers. */
export const redisAvailable: boolean = await reachable(REDIS_HOST, REDIS_PORT)

if (!redisAvailable && process.env["CI"] !== undefined) {
  throw new Error(`Redis is not reachable at ${REDIS_HOST}:${REDIS_PORT}, and CI requires the Redis suites.`)
}

/** A `describe` that is skipped, with a printed reason, when Redis is not reachable. */
export const describeRedis = (name: string, body: () => void): void => {
  if (!redisAvailable)
    console.warn(`Skipping "${name}": Redis is not reachable at ${REDIS_HOST}:${REDIS_PORT}.`)
  describe.skipIf(!redisAvailable)(name, body)
}

/** The URL of the shared server, or of a proxy's port in front of it. */
export const redisUrl = (port: number = REDIS_PORT): string => `redis://${REDIS_HOST}:${port}`

/** A key prefix no other test uses (a Cluster hash tag, like the default). */
export const freshPrefix = (): string => `{tbtest-${crypto.randomUUID().slice(0, 8)}}:rl`
