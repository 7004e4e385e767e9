/**
 * Budget events as an Effect `Stream`: soft budget crossed, 50 / 80 / 100 % of a max
 * budget reached, budget window reset, key expiring soon.
 *
 * The request path only hands the scopes of a settled request and its cost over (a few
 * map operations, no waiting, no failure). For a scope read before, the cost is added
 * to the last reading; only when that estimate reaches the next threshold, the window
 * ends, the caps change or the reading is older than `refreshEvery` (spend settled by
 * other instances) is the scope read again, by one of a few worker fibers, at most one
 * read in flight per scope. So a busy scope costs about one read a second, not one per
 * request. Each event has a deterministic id
 * and is claimed in the store first; only the instance whose claim wins publishes it,
 * so a crossing is delivered once however many instances see it.
 *
 * A periodic scan reports keys that expire soon and the window resets of scopes that
 * went idle, re-reads scopes settled here since a reading older than `refreshEvery`
 * (so spend that only adds up across instances is seen too), and prunes old claims.
 * Its cost: one comparison per watched scope in this process, one read per scope whose
 * window ended or that is due a refresh, one query listing the keys that expire within
 * `keyExpiringWithin`, and one delete of expired claims.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  DateTime,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  PubSub,
  Queue,
  Schedule,
  type Scope,
  Stream
} from "effect"
import type { BudgetEvent } from "../domain/BudgetEvent.js"
import * as Limits from "../domain/Limits.js"
import type * as Money from "../domain/Money.js"
import * as ScopeRef from "../domain/Scope.js"
import { EventClaims } from "../store/EventClaims.js"
import { KeyRepo } from "../store/KeyRepo.js"
import type { Admission } from "./BudgetPolicy.js"
import * as Crossings from "./events/Crossings.js"
import * as ScopeReader from "./events/ScopeReader.js"

/** @since 0.1.0 */
export interface BudgetEventsOptions {
  /** Set `false` to turn budget events off: nothing is read, nothing is published. */
  readonly enabled?: boolean
  /** A key that expires within this time raises `KeyExpiring`. Default 7 days. */
  readonly keyExpiringWithin?: Duration.DurationInput
  /** How often the scan runs (expiring keys, idle window resets, claim pruning). Default 1 minute. */
  readonly scanEvery?: Duration.DurationInput
  /**
   * How old a scope's last reading may be before a settle reads it again, to see spend
   * settled by other instances. Below a threshold a settle reads nothing: this instance
   * adds what it settled to the last reading. Default 1 second.
   */
  readonly refreshEvery?: Duration.DurationInput
  /** Events kept for a subscriber that falls behind; the oldest go first. Default 1024. */
  readonly buffer?: number
}

/** @since 0.1.0 */
export interface BudgetEventsShape {
  /** The events published after the stream starts running. */
  readonly events: Stream.Stream<BudgetEvent>
  /** A subscription that starts now: it sees every event published from this moment. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<BudgetEvent>, never, Scope.Scope>
  /**
   * The settle hook: `cost` was charged to every scope of the admission. Queues a read
   * of those that may have crossed something. Never waits or fails.
   */
  readonly observe: (admission: Admission, cost: Money.Money) => Effect.Effect<void>
  /** Queues one scope for a check. */
  readonly check: (scope: ScopeRef.ScopeRef) => Effect.Effect<void>
  /** Runs one scan now. */
  readonly scan: Effect.Effect<void>
  /** Waits until every queued check has been done and its events published. */
  readonly idle: Effect.Effect<void>
}

/**
 * The budget events of a deployment (part of `TeamBudget.layer`).
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import { BudgetEvents } from "teambudget"
 *
 * const logEvents = Effect.flatMap(BudgetEvents.BudgetEvents, ({ events }) =>
 *   Stream.runForEach(events, (event) => Effect.log(`${event._tag} on ${event.scope.kind} ${event.scope.id}`))
 * )
 * @since 0.1.0
 */
export class BudgetEvents extends Context.Tag("teambudget/BudgetEvents")<BudgetEvents, BudgetEventsShape>() {}

/** Events published by this instance, by `type`. @since 0.1.0 */
export const published = Metric.counter("teambudget_budget_events_total", {
  description: "Budget events published by this instance (claim won), by type",
  incremental: true
})

const DEFAULT_WITHIN = Duration.days(7)
const DEFAULT_SCAN_EVERY = Duration.minutes(1)
const DEFAULT_REFRESH = Duration.seconds(1)
const WORKERS = 4
/** Scopes remembered for reset detection; the least recently settled go first. */
const MAX_TRACKED = 100_000
/** A scope found without caps is not read again for this long (end users, the global budget). */
const UNWATCHED_RECHECK_MILLIS = 10_000

interface Tracked {
  readonly key: string
  readonly ref: ScopeRef.ScopeRef
  state: "idle" | "reading"
  /** Read once more when the current read ends (an explicit check came meanwhile). */
  again: boolean
  /** Whether the fields below hold a reading yet. */
  read: boolean
  /** The last reading's spend plus what this instance settled on the scope since. */
  spend: bigint
  /** Whether this instance settled on the scope since the last reading. */
  settledSinceRead: boolean
  /** Settled while a read was in flight; added on top of that read (an over-estimate, so never a miss). */
  spendDuringRead: bigint
  /** The spend at which the next event fires in this window; undefined when all have fired. */
  next: bigint | undefined
  /** When the last reading was taken, epoch milliseconds. */
  readAt: number
  limits: Limits.Limits
  /** End of the window last read; undefined without a duration. */
  windowEnd: number | undefined
  /** Event ids of the current window already claimed (or lost) by this instance. */
  readonly decided: Set<string>
}

/** The limits of a scope as the admission's principal carries them; undefined when it does not. */
const principalLimits = (admission: Admission, ref: ScopeRef.ScopeRef): Limits.Limits | undefined => {
  const { key, user, membership, team, organization } = admission.principal
  switch (ref.kind) {
    case "key":
      return key.limits
    case "user":
      return Option.isSome(user) ? user.value.limits : Limits.none
    case "membership":
      return Option.isSome(membership) && Option.isSome(membership.value.budget)
        ? membership.value.budget.value.limits
        : Limits.none
    case "team":
      return Option.isSome(team) ? team.value.limits : Limits.none
    case "organization":
      return Option.isSome(organization) ? organization.value.limits : Limits.none
    default:
      return undefined
  }
}

/**
 * Whether a settle on a scope calls for reading it: no reading yet, its window ended,
 * its caps changed, the last reading is older than `refreshMillis` (spend settled by
 * other instances), or the estimated spend reached the next threshold.
 */
const needsRead = (
  entry: Tracked,
  limits: Limits.Limits | undefined,
  now: number,
  refreshMillis: number
): boolean =>
  !entry.read ||
  (entry.windowEnd !== undefined && now >= entry.windowEnd) ||
  now - entry.readAt >= refreshMillis ||
  (limits !== undefined && !Crossings.sameCaps(limits, entry.limits)) ||
  (entry.next !== undefined && entry.spend >= entry.next)

const noop: BudgetEventsShape = {
  events: Stream.empty,
  subscribe: Queue.unbounded<BudgetEvent>(),
  observe: () => Effect.void,
  check: () => Effect.void,
  scan: Effect.void,
  idle: Effect.void
}

/**
 * Builds the service and starts its workers and scan in the layer's scope.
 *
 * @example
 * const events = yield* BudgetEvents
 * yield* events.events.pipe(Stream.runForEach((event) => Effect.log(event._tag, event.scope)), Effect.fork)
 * @since 0.1.0
 */
export const make = (options: BudgetEventsOptions = {}) =>
  Effect.gen(function* () {
    if (options.enabled === false) return BudgetEvents.of(noop)
    const read = yield* ScopeReader.make
    const claims = yield* EventClaims
    const keys = yield* KeyRepo
    const within = Duration.toMillis(Duration.decode(options.keyExpiringWithin ?? DEFAULT_WITHIN))
    const scanEvery = Duration.decode(options.scanEvery ?? DEFAULT_SCAN_EVERY)
    const refreshMillis = Duration.toMillis(Duration.decode(options.refreshEvery ?? DEFAULT_REFRESH))
    const pubsub = yield* Effect.acquireRelease(
      PubSub.sliding<BudgetEvent>(options.buffer ?? 1024),
      PubSub.shutdown
    )
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Tracked>(), Queue.shutdown)
    const quiet = yield* Effect.makeLatch(true)
    const tracked = new Map<string, Tracked>()
    const unwatchedUntil = new Map<string, number>()
    // Key-expiry event ids decided by this instance, with the expiry after which they are forgotten.
    const keysDecided = new Map<string, number>()
    let pending = 0

    const evictOne = () => {
      for (const entry of tracked.values()) {
        if (entry.state === "idle") {
          tracked.delete(entry.key)
          return
        }
      }
    }

    const startRead = (entry: Tracked) => {
      entry.state = "reading"
      if (pending++ === 0) quiet.unsafeClose()
      queue.unsafeOffer(entry)
    }

    const entryOf = (ref: ScopeRef.ScopeRef, key: string): Tracked => {
      const found = tracked.get(key)
      if (found !== undefined) return found
      if (tracked.size >= MAX_TRACKED) evictOne()
      const entry: Tracked = {
        key,
        ref,
        state: "idle",
        again: false,
        read: false,
        settledSinceRead: false,
        spend: 0n,
        spendDuringRead: 0n,
        next: undefined,
        readAt: 0,
        limits: Limits.none,
        windowEnd: undefined,
        decided: new Set()
      }
      tracked.set(key, entry)
      return entry
    }

    /** Reads the scope now, or once more after the read in flight. */
    const force = (entry: Tracked) => {
      if (entry.state === "reading") entry.again = true
      else startRead(entry)
    }

    const publishOnce = (candidate: Crossings.Candidate) =>
      Effect.flatMap(claims.claim(candidate.event.eventId, candidate.expiresAt), (won) =>
        won
          ? Effect.zipRight(
              PubSub.publish(pubsub, candidate.event),
              Metric.increment(Metric.tagged(published, "type", candidate.event._tag))
            )
          : Effect.void
      )

    const checkOnce = (entry: Tracked) =>
      Effect.gen(function* () {
        entry.again = false
        entry.settledSinceRead = false
        entry.spendDuringRead = 0n
        const reading = yield* read(entry.ref)
        const now = yield* Clock.currentTimeMillis
        if (Option.isNone(reading) || !Crossings.watched(reading.value.limits)) {
          unwatchedUntil.set(entry.key, now + UNWATCHED_RECHECK_MILLIS)
          tracked.delete(entry.key)
          return
        }
        unwatchedUntil.delete(entry.key)
        const end = Crossings.windowEnd(reading.value.spend)
        const previous = entry.read ? entry.windowEnd : undefined
        if (end !== entry.windowEnd) entry.decided.clear()
        for (const candidate of Crossings.crossings(reading.value, previous, now)) {
          if (entry.decided.has(candidate.event.eventId)) continue
          yield* publishOnce(candidate)
          entry.decided.add(candidate.event.eventId)
        }
        entry.read = true
        entry.spend = reading.value.spend.current
        entry.next = Crossings.nextThreshold(reading.value)
        entry.readAt = now
        entry.limits = reading.value.limits
        entry.windowEnd = end
      })

    /** Ends a read: true when the scope must be read again at once. */
    const finish = (entry: Tracked, ok: boolean) =>
      Effect.sync(() => {
        entry.spend += entry.spendDuringRead
        entry.spendDuringRead = 0n
        const due = entry.again || (entry.read && entry.next !== undefined && entry.spend >= entry.next)
        if (ok && due) return true
        entry.state = "idle"
        if (--pending === 0) quiet.unsafeOpen()
        return false
      })

    const process = (entry: Tracked): Effect.Effect<void> =>
      checkOnce(entry).pipe(
        Effect.as(true),
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logWarning(
              `Budget events: checking ${entry.ref.kind} ${ScopeRef.displayId(entry.ref)} failed`,
              cause
            ),
            false
          )
        ),
        // After a failure the next settle tries again; reading at once would spin while the store is down.
        Effect.flatMap((ok) => finish(entry, ok)),
        Effect.flatMap((again) => (again ? process(entry) : Effect.void))
      )

    for (let i = 0; i < WORKERS; i++) {
      yield* Queue.take(queue).pipe(Effect.flatMap(process), Effect.forever, Effect.forkScoped)
    }

    const settled = (admission: Admission, cost: Money.Money, now: number) => {
      for (const ref of admission.hold.scopes) {
        const limits = principalLimits(admission, ref)
        if (limits !== undefined && !Crossings.watched(limits)) continue
        const key = ScopeRef.key(ref)
        if (limits === undefined) {
          const until = unwatchedUntil.get(key)
          if (until !== undefined && now < until) continue
        }
        const entry = entryOf(ref, key)
        if (entry.state === "reading") {
          entry.spendDuringRead += cost
          continue
        }
        entry.spend += cost
        entry.settledSinceRead = true
        if (needsRead(entry, limits, now, refreshMillis)) startRead(entry)
      }
    }

    const observe = (admission: Admission, cost: Money.Money) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => settled(admission, cost, now)))

    const check = (ref: ScopeRef.ScopeRef) => Effect.sync(() => force(entryOf(ref, ScopeRef.key(ref))))

    const logFailure = (what: string) =>
      Effect.catchAllCause((cause) => Effect.logWarning(`Budget events: ${what} failed`, cause))

    const scanKeys = (now: number) =>
      Effect.gen(function* () {
        for (const [id, expires] of keysDecided) if (expires <= now) keysDecided.delete(id)
        const expiring = yield* keys.listExpiring(DateTime.unsafeMake(now), DateTime.unsafeMake(now + within))
        for (const key of expiring) {
          if (Option.isNone(key.expires)) continue
          const candidate = Crossings.keyExpiring(key, key.expires.value, now)
          if (keysDecided.has(candidate.event.eventId)) continue
          yield* publishOnce(candidate)
          keysDecided.set(candidate.event.eventId, key.expires.value.epochMillis)
        }
      })

    const scan = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const entry of tracked.values()) {
        const windowEnded = entry.windowEnd !== undefined && entry.windowEnd <= now
        // Spend other instances settled, when no settle here came after the refresh time to read it.
        const stale = entry.settledSinceRead && now - entry.readAt >= refreshMillis
        if (windowEnded || stale) force(entry)
      }
      yield* scanKeys(now).pipe(logFailure("the key expiry scan"))
      yield* claims.prune(now).pipe(logFailure("pruning event claims"))
    })

    yield* scan.pipe(Effect.repeat(Schedule.spaced(scanEvery)), Effect.forkScoped)

    return BudgetEvents.of({
      events: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub),
      observe,
      check,
      scan,
      idle: quiet.await
    })
  })

/**
 * The budget events over the store. `TeamBudget.layer` includes it; configure it there
 * with `events: { ... }`.
 *
 * @example
 * import { Layer } from "effect"
 * import { BudgetEvents, MemoryStore } from "teambudget"
 *
 * const events = BudgetEvents.layer({ keyExpiringWithin: "3 days" }).pipe(Layer.provideMerge(MemoryStore.layer()))
 * @since 0.1.0
 */
export const layer = (
  options: BudgetEventsOptions = {}
): Layer.Layer<BudgetEvents, never, ScopeReader.Requirements | EventClaims> =>
  Layer.scoped(BudgetEvents, make(options))
