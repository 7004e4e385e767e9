/**
 * Scenarios for rate limits shared by several instances: each instance has a store of
 * its own (its own pool or client) on the same database or Redis, and the limits hold
 * across all of them together.
 */
import { expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Option, Schedule, type Scope } from "effect"
import type { RateLimitStoreShape, RateRule } from "../../src/store/RateLimitStore.js"
import { startProxy, type TcpProxy } from "./tcpProxy.js"

type Instances = Effect.Effect<readonly [RateLimitStoreShape, RateLimitStoreShape], unknown, Scope.Scope>

const fresh = (name: string) => `${name}:${crypto.randomUUID().slice(0, 8)}`

export const sharedLimits = (instances: () => Instances): void => {
  it.live("200 concurrent requests split over two instances admit exactly rpm_limit 50", () =>
    Effect.gen(function* () {
      const [a, b] = yield* instances()
      const rules: ReadonlyArray<RateRule> = [
        { bucket: fresh("key:requests"), kind: "requests", limit: 50 },
        { bucket: fresh("team:tokens"), kind: "tokens", limit: 1_000_000 }
      ]
      const now = yield* Clock.currentTimeMillis
      const decisions = yield* Effect.all(
        Array.from({ length: 200 }, (_, i) =>
          (i % 2 === 0 ? a : b).acquire({ ticketId: `r-${i}`, rules, tokens: 100, now, leaseMillis: 60_000 })
        ),
        { concurrency: "unbounded" }
      )
      expect(decisions.filter((d) => d._tag === "Admitted")).toHaveLength(50)
      // Only the admitted requests charged the team's tokens: 50 × 100.
      const probe = yield* b.acquire({
        ticketId: "probe",
        rules: rules.slice(1),
        tokens: 0,
        now,
        leaseMillis: 1
      })
      expect(probe).toEqual({ _tag: "Admitted", remaining: [1_000_000 - 5_000] })
    }).pipe(Effect.scoped)
  )

  it.live("max_parallel 3 holds across two instances", () =>
    Effect.gen(function* () {
      const [a, b] = yield* instances()
      const rules: ReadonlyArray<RateRule> = [{ bucket: fresh("key:parallel"), kind: "parallel", limit: 3 }]
      const acquire = (store: RateLimitStoreShape, ticketId: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          store.acquire({ ticketId, rules, tokens: 0, now, leaseMillis: 60_000 })
        )
      const release = (store: RateLimitStoreShape, ticketId: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          store.complete({ ticketId, rules, tokensDelta: 0, refundRequest: false, now })
        )

      // All at once: exactly three slots.
      const first = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => acquire(i % 2 === 0 ? a : b, `burst-${i}`)),
        { concurrency: "unbounded" }
      )
      const holders = first.flatMap((d, i) => (d._tag === "Admitted" ? [i] : []))
      expect(holders).toHaveLength(3)
      yield* Effect.forEach(holders, (i) => release(i % 2 === 0 ? a : b, `burst-${i}`), { discard: true })

      // Workers on both instances come and go: never more than three in flight.
      let inFlight = 0
      let peak = 0
      let served = 0
      const worker = (store: RateLimitStoreShape, w: number) =>
        Effect.forEach(
          Array.from({ length: 6 }, (_, round) => `w-${w}-${round}`),
          (ticketId) =>
            Effect.flatMap(acquire(store, ticketId), (decision) => {
              if (decision._tag === "Refused") return Effect.sleep("2 millis")
              inFlight++
              served++
              peak = Math.max(peak, inFlight)
              return Effect.zipRight(
                Effect.sleep("5 millis"),
                Effect.suspend(() => {
                  inFlight--
                  return release(store, ticketId)
                })
              )
            }),
          { discard: true }
        )
      yield* Effect.all(
        Array.from({ length: 12 }, (_, w) => worker(w % 2 === 0 ? a : b, w)),
        { concurrency: "unbounded", discard: true }
      )
      expect(peak).toBeLessThanOrEqual(3)
      expect(served).toBeGreaterThan(0)
    }).pipe(Effect.scoped)
  )
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): Option.Option<E> =>
  Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

/**
 * A store reached through `proxy`: it admits, then, once the proxy is cut, fails
 * every request at once with a `StoreUnavailable` whose message mentions `mentions`
 * (fail closed, nothing queued), and admits again by itself after the proxy is restored.
 */
export const outage = (store: RateLimitStoreShape, proxy: TcpProxy, mentions: string) =>
  Effect.gen(function* () {
    const rules: ReadonlyArray<RateRule> = [{ bucket: fresh("key:requests"), kind: "requests", limit: 100 }]
    const request = (ticketId: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.acquire({ ticketId, rules, tokens: 0, now, leaseMillis: 60_000 })
      )
    expect((yield* request("before"))._tag).toBe("Admitted")
    proxy.cut()
    for (const ticketId of ["during-1", "during-2", "during-3"]) {
      const error = failureOf(yield* Effect.exit(request(ticketId)))
      expect(Option.map(error, (e) => e._tag)).toEqual(Option.some("StoreUnavailable"))
      expect(Option.map(error, (e) => e.message.includes(mentions))).toEqual(Option.some(true))
    }
    proxy.restore()
    const after = yield* Effect.retry(
      request("after"),
      Schedule.spaced("200 millis").pipe(Schedule.upTo("15 seconds"))
    )
    expect(after._tag).toBe("Admitted")
  })

/** A TCP proxy in front of `port` on this machine for as long as the scope lives. */
export const proxyTo = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(() => startProxy("127.0.0.1", port)),
    (proxy) => Effect.promise(() => proxy.close())
  )
