/**
 * What the in-process benchmarks share: a memory store with one priced model ("bench")
 * and a team with a large budget holding one key, written straight through the ports.
 */
import { Effect, Layer, type ManagedRuntime, Option, Schema } from "effect"
import {
  BudgetPolicy,
  Ids,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Limits,
  MemoryStore,
  Money,
  Pricing,
  TeamRepo,
  Token,
  TokenEstimator
} from "../src/index.js"

export const services = Layer.mergeAll(BudgetPolicy.layer(), TokenEstimator.layer).pipe(
  Layer.provideMerge(KeyAuth.layer().pipe(Layer.provideMerge(Invalidation.layerLocal))),
  Layer.provideMerge(
    Pricing.layer({
      catalogue: false,
      models: { bench: { inputCostPerToken: 0.000001, outputCostPerToken: 0.000002 } }
    })
  ),
  // A bounded spend log: the memory store keeps every row by default, and a million rows would
  // measure the garbage collector rather than the budget check.
  Layer.provideMerge(MemoryStore.layer({ spendLogCapacity: 10_000 }))
)

/** Creates the team and its key (with `keyLimits`, none by default); returns the key's token. */
export const seed = async (
  runtime: ManagedRuntime.ManagedRuntime<TeamRepo | KeyRepo, unknown>,
  keyLimits: Limits.Limits = Limits.none
): Promise<string> => {
  const token = Token.generateToken()
  await runtime.runPromise(
    Effect.gen(function* () {
      const teams = yield* TeamRepo
      const keys = yield* KeyRepo
      const team = yield* teams.insert({
        teamId: Schema.decodeSync(Ids.TeamId)("bench-team"),
        teamAlias: "bench",
        organizationId: Option.none(),
        limits: new Limits.Limits({
          ...Limits.none,
          maxBudget: Option.some(Money.make(1_000_000n * Money.NANOS_PER_USD))
        }),
        models: [],
        blocked: false,
        metadata: {}
      })
      yield* keys.insert({
        keyId: Schema.decodeSync(Ids.KeyId)("bench-key"),
        hash: Token.hashToken(token),
        keyAlias: Option.none(),
        displayPrefix: Token.displayPrefix(token),
        userId: Option.none(),
        teamId: Option.some(team.teamId),
        limits: keyLimits,
        models: [],
        expires: Option.none(),
        blocked: false,
        metadata: {}
      })
    })
  )
  return token
}
