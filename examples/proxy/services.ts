/**
 * The proxy's services: the SDK's own, over the store `DATABASE_URL` names (with the
 * rate-limit counters in Redis when `REDIS_URL` is set), with two proxy-specific pieces
 * composed in — pricing that knows each model name's upstream, and the budget policy
 * wrapped by {@link tracked}.
 */
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import {
  Admin,
  BudgetEvents,
  BudgetPolicy,
  BudgetWebhook,
  KeyAuth,
  Pricing,
  RateLimiter,
  RedisRateLimits,
  SqlStore,
  type TeamBudget,
  TokenEstimator
} from "../../src/index.js"
import type { ModelRoute, ProxyConfig } from "./config.js"
import { type makeHolds, tracked } from "./tracking.js"

/**
 * Configured prices by model name; a name without one is priced as its upstream model
 * (`fast` → `gpt-4o-mini`) from the offline catalogue, as LiteLLM does.
 */
const routedPricing = (routes: ReadonlyArray<ModelRoute>): Effect.Effect<Pricing.PricingShape, unknown> =>
  Effect.map(
    Pricing.make({
      models: Object.fromEntries(
        routes.flatMap((route) =>
          Option.toArray(Option.map(route.price, (price) => [route.name, price] as const))
        )
      ),
      free: routes.filter((r) => r.target._tag === "Mock" && Option.isNone(r.price)).map((r) => r.name)
    }),
    (base): Pricing.PricingShape => {
      const priceAs = new Map(
        routes.filter((route) => Option.isNone(route.price)).map((route) => [route.name, route.priceAs])
      )
      const target = (model: string) => priceAs.get(model) ?? model
      return {
        price: (model) => Effect.map(base.price(target(model)), (price) => ({ ...price, model })),
        cost: (model, usage) => base.cost(target(model), usage)
      }
    }
  )

/** Budget events, posted to the configured webhook when there is one. */
const budgetEvents = (config: ProxyConfig) =>
  Option.match(config.webhook, {
    onNone: () => BudgetEvents.layer(),
    onSome: (webhook) => BudgetWebhook.layer(webhook).pipe(Layer.provideMerge(BudgetEvents.layer()))
  })

/**
 * The store, with its rate-limit counters moved to Redis when configured: what
 * `TeamBudget.layer(store, { rateLimits })` does, `provideMerge` letting Redis's
 * `RateLimitStore` win over the store's.
 */
const storeLayer = (config: ProxyConfig) => {
  const store = SqlStore.layerFromUrl(
    Redacted.value(config.databaseUrl),
    Option.match(config.holdTtlSeconds, {
      onNone: () => ({}),
      onSome: (seconds) => ({ holdTtl: Duration.seconds(seconds) })
    })
  )
  return Option.match(config.redis, {
    onNone: () => store,
    onSome: (redis) => Layer.provideMerge(RedisRateLimits.layer(redis), store)
  })
}

/** Every service the proxy runs on. */
export const layer = (
  config: ProxyConfig,
  holds: ReturnType<typeof makeHolds>
): Layer.Layer<TeamBudget.Services, unknown> => {
  const policy = Layer.effect(
    BudgetPolicy.BudgetPolicy,
    Effect.gen(function* () {
      const base = yield* BudgetPolicy.make()
      return tracked(base, yield* KeyAuth.KeyAuth, holds)
    })
  ).pipe(Layer.provideMerge(RateLimiter.layer()), Layer.provideMerge(budgetEvents(config)))
  return Layer.mergeAll(policy.pipe(Layer.provideMerge(KeyAuth.layer())), Admin.Admin.Default).pipe(
    Layer.provideMerge(
      Layer.mergeAll(Layer.effect(Pricing.Pricing, routedPricing(config.models)), TokenEstimator.layer)
    ),
    Layer.provideMerge(storeLayer(config))
  )
}
