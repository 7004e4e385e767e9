/**
 * What the proxy learns about each request from the budget policy: who was admitted,
 * what was charged, why a request was refused. It wraps the SDK's `BudgetPolicy`
 * (a plain service, so wrapping it is ordinary composition) and reads the current
 * request's record from a `FiberRef`, which the guard carries into settlements that
 * happen after the response has started (streams).
 *
 * It also counts open holds, so a shutdown waits until every admitted request has
 * been settled or released.
 */
import { Cause, Effect, Exit, FiberRef, Option } from "effect"
import type { BudgetPolicy, KeyAuth, Money, Pricing, Principal, SpendLog } from "../../src/index.js"

/** One HTTP request, filled in as it goes. */
export interface RequestRecord {
  readonly method: string
  readonly path: string
  readonly startedAt: number
  model: Option.Option<string>
  principal: Option.Option<Principal.Principal>
  usage: Option.Option<Pricing.Usage>
  cost: Option.Option<Money.Money>
  /** How the request's hold ended: charged (`success`, `partial`) or given back (`released`). */
  spend: Option.Option<SpendLog.SpendStatus | "released">
  error: Option.Option<string>
  /** From the call to the provider to its answer's headers, in milliseconds; none when nothing was forwarded. */
  upstreamMs: Option.Option<number>
  /** Whether a hold of this request is still open. */
  holdOpen: boolean
}

export const newRecord = (method: string, path: string): RequestRecord => ({
  method,
  path,
  startedAt: performance.now(),
  model: Option.none(),
  principal: Option.none(),
  usage: Option.none(),
  cost: Option.none(),
  spend: Option.none(),
  error: Option.none(),
  upstreamMs: Option.none(),
  holdOpen: false
})

/** The record of the request the current fiber serves. */
export const CurrentRecord = FiberRef.unsafeMake<Option.Option<RequestRecord>>(Option.none())

/** Open holds, and who to tell when one closes. */
export interface Holds {
  readonly open: () => number
  /** Called whenever a hold closes (settled or released), with its record, if any. */
  onClose: (record: Option.Option<RequestRecord>) => void
}

export const makeHolds = (): Holds & { readonly add: (n: number) => void } => {
  let open = 0
  return {
    open: () => open,
    add: (n) => {
      open += n
    },
    onClose: () => {}
  }
}

const withRecord = (f: (record: RequestRecord) => void) =>
  Effect.flatMap(FiberRef.get(CurrentRecord), (record) => Effect.sync(() => Option.map(record, f)))

/**
 * The policy, reporting into the current request's record and counting holds.
 */
export const tracked = (
  policy: BudgetPolicy.BudgetPolicyShape,
  auth: KeyAuth.KeyAuthShape,
  holds: ReturnType<typeof makeHolds>
): BudgetPolicy.BudgetPolicyShape => {
  const closed = Effect.flatMap(FiberRef.get(CurrentRecord), (record) =>
    Effect.sync(() => {
      holds.add(-1)
      Option.map(record, (r) => {
        r.holdOpen = false
      })
      holds.onClose(record)
    })
  )
  return {
    authorize: (request) =>
      policy.authorize(request).pipe(
        Effect.tap((admission) =>
          Effect.zipRight(
            Effect.sync(() => holds.add(1)),
            withRecord((record) => {
              record.holdOpen = true
              record.model = Option.some(admission.model)
              record.principal = Option.some(admission.principal)
            })
          )
        ),
        Effect.tapError((error) =>
          Effect.gen(function* () {
            yield* withRecord((record) => {
              record.model = Option.some(request.model)
              record.error = Option.some(error._tag)
            })
            // A refusal still names the key in the log, when the key itself is valid.
            const principal = yield* Effect.option(auth.authenticate(request.apiKey))
            yield* withRecord((record) => {
              record.principal = principal
            })
          })
        )
      ),
    settle: (admission, usage, status) =>
      policy.settle(admission, usage, status).pipe(
        Effect.onExit((exit) =>
          Exit.match(exit, {
            onSuccess: (settlement) =>
              Effect.zipRight(
                withRecord((record) => {
                  record.usage = Option.some(usage)
                  record.cost = Option.some(settlement.cost)
                  record.spend = Option.some(status ?? "success")
                }),
                closed
              ),
            // The guard settles again by its own count when the usage was refused.
            onFailure: (cause) =>
              Option.match(Cause.failureOption(cause), {
                onSome: (error) => (error._tag === "InvalidRequest" ? Effect.void : closed),
                onNone: () => closed
              })
          })
        )
      ),
    release: (admission) =>
      policy.release(admission).pipe(
        Effect.ensuring(
          Effect.zipRight(
            withRecord((record) => {
              record.spend = Option.some("released")
            }),
            closed
          )
        )
      )
  }
}
