/**
 * One layer with every service of a deployment: the store you choose, key
 * authentication, pricing, token estimation, the budget policy and the management
 * operations.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import type { InvalidRequest } from "./domain/Errors.js"
import { Admin } from "./services/Admin.js"
import * as BudgetPolicy from "./services/BudgetPolicy.js"
import * as Invalidation from "./services/Invalidation.js"
import * as KeyAuth from "./services/KeyAuth.js"
import * as Pricing from "./services/Pricing.js"
import * as TokenEstimator from "./services/TokenEstimator.js"
import * as MemoryStore from "./store/memory/MemoryStore.js"
import type { StoreServices } from "./store/StoreServices.js"

/** Everything {@link layer} provides. @since 0.1.0 */
export type Services =
  | BudgetPolicy.BudgetPolicy
  | KeyAuth.KeyAuth
  | Pricing.Pricing
  | TokenEstimator.TokenEstimator
  | Admin
  | Invalidation.Invalidation
  | StoreServices

/** @since 0.1.0 */
export interface TeamBudgetOptions {
  readonly pricing?: Pricing.PricingConfig
  readonly policy?: BudgetPolicy.BudgetPolicyOptions
  readonly keyAuth?: KeyAuth.KeyAuthOptions
}

/**
 * Every service over a store. The store provides the repositories, the ledger and the
 * key-cache invalidation channel (`SqlStore.layerPg` bridges it across instances).
 *
 * @example
 * import { Effect } from "effect"
 * import { BudgetPolicy, SqlStore, TeamBudget } from "teambudget"
 *
 * const live = TeamBudget.layer(SqlStore.layerSqlite({ filename: ".teambudget/teambudget.db" }))
 * const program = Effect.flatMap(BudgetPolicy.BudgetPolicy, (policy) =>
 *   policy.authorize({ apiKey: "sk-...", model: "gpt-4o-mini", promptTokens: 20 })
 * )
 * Effect.runPromise(program.pipe(Effect.provide(live)))
 * @since 0.1.0
 */
export const layer = <E, R>(
  store: Layer.Layer<StoreServices | Invalidation.Invalidation, E, R>,
  options: TeamBudgetOptions = {}
): Layer.Layer<Services, E | InvalidRequest, R> =>
  Layer.mergeAll(
    BudgetPolicy.layer(options.policy).pipe(Layer.provideMerge(KeyAuth.layer(options.keyAuth))),
    Admin.Default
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(Pricing.layer(options.pricing), TokenEstimator.layer)),
    Layer.provideMerge(store)
  )

/**
 * Every service over a fresh memory store: for tests and throwaway use.
 *
 * @since 0.1.0
 */
export const layerMemory = (
  options: TeamBudgetOptions & MemoryStore.MemoryStoreOptions = {}
): Layer.Layer<Services, InvalidRequest> =>
  layer(Layer.merge(MemoryStore.layer(options), Invalidation.layerLocal), options)
