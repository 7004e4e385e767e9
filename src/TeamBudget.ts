/**
 * One layer with every service of a deployment: the store you choose, key
 * authentication, pricing, token estimation, the budget policy with its rate limiter
 * and the management operations.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import type { InvalidRequest } from "./domain/Errors.js"
import { Admin } from "./services/Admin.js"
import * as BudgetEvents from "./services/BudgetEvents.js"
import * as BudgetPolicy from "./services/BudgetPolicy.js"
import * as BudgetWebhook from "./services/BudgetWebhook.js"
import * as Invalidation from "./services/Invalidation.js"
import * as KeyAuth from "./services/KeyAuth.js"
import * as Pricing from "./services/Pricing.js"
import type * as RateLimiter from "./services/RateLimiter.js"
import * as TokenEstimator from "./services/TokenEstimator.js"
import * as MemoryStore from "./store/memory/MemoryStore.js"
import type { RateLimitStore } from "./store/RateLimitStore.js"
import type { StoreServices } from "./store/StoreServices.js"

/** Everything {@link layer} provides. @since 0.1.0 */
export type Services =
  | BudgetPolicy.BudgetPolicy
  | RateLimiter.RateLimiter
  | KeyAuth.KeyAuth
  | Pricing.Pricing
  | TokenEstimator.TokenEstimator
  | Admin
  | Invalidation.Invalidation
  | BudgetEvents.BudgetEvents
  | StoreServices

/** @since 0.1.0 */
export interface TeamBudgetOptions<RE = never, RR = never> {
  readonly pricing?: Pricing.PricingConfig
  readonly policy?: BudgetPolicy.BudgetPolicyOptions
  readonly keyAuth?: KeyAuth.KeyAuthOptions
  /**
   * Where the rate-limit counters live, in place of the store's own: for example
   * `RedisRateLimits.layer({ url })` to share them through Redis while budgets stay
   * in SQL. It may use any service the store provides.
   */
  readonly rateLimits?: Layer.Layer<RateLimitStore, RE, RR>
  /** Budget events (on by default). */
  readonly events?: BudgetEvents.BudgetEventsOptions
  /** Sends every budget event to this webhook. */
  readonly webhook?: BudgetWebhook.WebhookOptions
}

/** The budget events, with the webhook sender when one is configured. */
const eventsLayer = <RE, RR>(options: TeamBudgetOptions<RE, RR>) => {
  const events = BudgetEvents.layer(options.events)
  return options.webhook === undefined
    ? events
    : BudgetWebhook.layer(options.webhook).pipe(Layer.provideMerge(events))
}

type StoreLayer<E, R> = Layer.Layer<StoreServices | Invalidation.Invalidation, E, R>

/** The store, with its rate-limit counters replaced by `rateLimits` when given. */
const withRateLimits = <E, R, RE, RR>(
  store: StoreLayer<E, R>,
  rateLimits: Layer.Layer<RateLimitStore, RE, RR> | undefined
): StoreLayer<E | RE, R | Exclude<RR, StoreServices | Invalidation.Invalidation>> =>
  // `provideMerge` lets the override's `RateLimitStore` win over the store's.
  rateLimits === undefined ? store : Layer.provideMerge(rateLimits, store)

/**
 * Every service over a store. The store provides the repositories, the ledger and the
 * key-cache invalidation channel (`SqlStore.layerPg` bridges it across instances).
 *
 * @example
 * import { Effect } from "effect"
 * import { BudgetPolicy, SqlStore, TeamBudget } from "teambudget"
 *
 * const live = TeamBudget.layer(SqlStore.layerSqlite({ filename: ".teambudget/teambudget.db" }))
 * // Rate-limit counters in Redis instead: TeamBudget.layer(store, { rateLimits: RedisRateLimits.layer({ url }) })
 * const program = Effect.flatMap(BudgetPolicy.BudgetPolicy, (policy) =>
 *   policy.authorize({ apiKey: "sk-...", model: "gpt-4o-mini", promptTokens: 20 })
 * )
 * Effect.runPromise(program.pipe(Effect.provide(live)))
 * @since 0.1.0
 */
export const layer = <E, R, RE = never, RR = never>(
  store: StoreLayer<E, R>,
  options: TeamBudgetOptions<RE, RR> = {}
): Layer.Layer<
  Services,
  E | RE | InvalidRequest,
  R | Exclude<RR, StoreServices | Invalidation.Invalidation>
> =>
  Layer.mergeAll(
    BudgetPolicy.layer(options.policy).pipe(
      Layer.provideMerge(KeyAuth.layer(options.keyAuth)),
      Layer.provideMerge(eventsLayer(options))
    ),
    Admin.Default
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(Pricing.layer(options.pricing), TokenEstimator.layer)),
    Layer.provideMerge(withRateLimits(store, options.rateLimits))
  )

/**
 * Every service over a fresh memory store: for tests and throwaway use.
 *
 * @since 0.1.0
 */
export const layerMemory = <RE = never>(
  options: TeamBudgetOptions<RE> & MemoryStore.MemoryStoreOptions = {}
): Layer.Layer<Services, RE | InvalidRequest> =>
  layer(Layer.merge(MemoryStore.layer(options), Invalidation.layerLocal), options)
