/**
 * Helpers of the store conformance suite. They use the store ports only, so every
 * store runs the very same tests.
 */
import { Clock, DateTime, Effect, Either, Option, Schema } from "effect"
import {
  Ids,
  KeyRepo,
  Limits,
  Money,
  type Scope,
  SpendLedger,
  type Spend,
  type StoreServices,
  Token
} from "../../src/index.js"
import type { Hold, HoldRequest, Mode, SpendLogDraft } from "../../src/store/SpendLedger.js"
import { addMember, makeOrganization, makeTeam, makeUser, teamId, userId } from "../support/fixtures.js"

/** Runs one test on a fresh store. */
export type Run = <A, E>(effect: Effect.Effect<A, E, StoreServices>) => Effect.Effect<A, unknown>

const hasTag = <E extends { readonly _tag: string }, T extends E["_tag"]>(
  error: E,
  tag: T
): error is Extract<E, { readonly _tag: T }> => error._tag === tag

/** The typed failure of an effect that must fail with `tag`. */
export const failure = <A, E extends { readonly _tag: string }, R, T extends E["_tag"]>(
  effect: Effect.Effect<A, E, R>,
  tag: T
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> =>
  Effect.flatMap(Effect.either(effect), (result) => {
    if (Either.isRight(result)) return Effect.dieMessage(`expected ${tag}, but it succeeded`)
    const error = result.left
    return hasTag(error, tag)
      ? Effect.succeed(error)
      : Effect.dieMessage(`expected ${tag}, got ${error._tag}`)
  })

/** The value of an option that must be there. */
export const some = <A>(option: Option.Option<A>): Effect.Effect<A> =>
  Option.match(option, { onNone: () => Effect.dieMessage("expected Some, got None"), onSome: Effect.succeed })

export const holdId = Schema.decodeSync(Ids.HoldId)
export const requestId = Schema.decodeSync(Ids.RequestId)
export const endUserId = Schema.decodeSync(Ids.EndUserId)
export const budgetId = Schema.decodeSync(Ids.BudgetId)

/** Every limit set, so clearing and keeping can be told apart. */
export const fullLimits = (maxUsd: number): Limits.Limits =>
  new Limits.Limits({
    maxBudget: Option.some(Money.make(BigInt(maxUsd) * Money.NANOS_PER_USD)),
    softBudget: Option.some(Money.make((BigInt(maxUsd) * Money.NANOS_PER_USD) / 2n)),
    budgetDuration: Option.some({ count: 7, unit: "d" }),
    tpmLimit: Option.some(1000),
    rpmLimit: Option.some(10),
    maxParallelRequests: Option.some(3)
  })

/** A request's key, user, membership, team, organization and the global scope, set up in the store. */
export interface World {
  readonly keyHash: Ids.KeyHash
  readonly keyId: Ids.KeyId
  readonly key: Scope.ScopeRef
  readonly user: Scope.ScopeRef
  readonly membership: Scope.ScopeRef
  readonly team: Scope.ScopeRef
  readonly organization: Scope.ScopeRef
  readonly global: Scope.ScopeRef
  /** All of the above, in `Scope.ORDER`. */
  readonly scopes: ReadonlyArray<Scope.ScopeRef>
}

export interface WorldLimits {
  readonly key?: Limits.Limits
  readonly user?: Limits.Limits
  readonly member?: Limits.Limits
  readonly team?: Limits.Limits
  readonly organization?: Limits.Limits
}

/** Organization "acme", team "eng" in it, user "alice" in the team, and a key of hers on the team. */
export const makeWorld = (limits: WorldLimits = {}): Effect.Effect<World, unknown, StoreServices> =>
  Effect.gen(function* () {
    yield* makeOrganization("acme", limits.organization ?? Limits.none)
    yield* makeTeam("eng", limits.team ?? Limits.none, { organizationId: "acme" })
    yield* makeUser("alice", limits.user ?? Limits.none)
    yield* addMember("eng", "alice", Option.fromNullable(limits.member))
    const token = Token.generateToken()
    const keyHash = Token.hashToken(token)
    const keyId = Schema.decodeSync(Ids.KeyId)(`key-${crypto.randomUUID()}`)
    const keys = yield* KeyRepo
    yield* keys.insert({
      keyId,
      hash: keyHash,
      keyAlias: Option.some("alice-key"),
      displayPrefix: Token.displayPrefix(token),
      userId: Option.some(userId("alice")),
      teamId: Option.some(teamId("eng")),
      limits: limits.key ?? Limits.none,
      models: [],
      expires: Option.none(),
      blocked: false,
      metadata: {}
    })
    const key: Scope.ScopeRef = { kind: "key", id: keyHash, label: "alice-key" }
    const user: Scope.ScopeRef = { kind: "user", id: userId("alice") }
    const membership: Scope.ScopeRef = { kind: "membership", teamId: teamId("eng"), userId: userId("alice") }
    const team: Scope.ScopeRef = { kind: "team", id: teamId("eng") }
    const organization: Scope.ScopeRef = {
      kind: "organization",
      id: Schema.decodeSync(Ids.OrganizationId)("acme")
    }
    const global: Scope.ScopeRef = { kind: "global" }
    return {
      keyHash,
      keyId,
      key,
      user,
      membership,
      team,
      organization,
      global,
      scopes: [key, user, membership, team, organization, global]
    }
  })

let holdCount = 0

/** A hold request with a fresh id. */
export const holdRequest = (
  scopes: ReadonlyArray<Scope.ScopeRef>,
  amount: Money.Money,
  mode: Mode = "strict"
): HoldRequest => ({ holdId: holdId(`hold-${++holdCount}-${crypto.randomUUID()}`), scopes, amount, mode })

export const hold = (scopes: ReadonlyArray<Scope.ScopeRef>, amount: Money.Money, mode: Mode = "strict") =>
  Effect.flatMap(SpendLedger, (ledger) => ledger.hold(holdRequest(scopes, amount, mode)))

/** The spend log row a settlement of `world`'s key writes. */
export const logDraft = (world: World, hold: Hold, startedAt: DateTime.Utc): SpendLogDraft => ({
  requestId: requestId(hold.holdId),
  keyId: world.keyId,
  keyHash: world.keyHash,
  keyLabel: "alice-key",
  userId: Option.some(userId("alice")),
  teamId: Option.some(teamId("eng")),
  organizationId: Option.some(Schema.decodeSync(Ids.OrganizationId)("acme")),
  endUser: Option.none(),
  model: "gpt-test",
  promptTokens: 10,
  completionTokens: 20,
  startedAt,
  status: "success"
})

export const settle = (world: World, held: Hold, cost: Money.Money) =>
  Effect.gen(function* () {
    const ledger = yield* SpendLedger
    const now = yield* Clock.currentTimeMillis
    return yield* ledger.settle(held, cost, logDraft(world, held, DateTime.unsafeMake(now)))
  })

export const spendOf = (scope: Scope.ScopeRef): Effect.Effect<Spend.SpendSnapshot, unknown, StoreServices> =>
  Effect.flatMap(SpendLedger, (ledger) => ledger.spendOf(scope))

/** `held` of every scope. */
export const heldOn = (scopes: ReadonlyArray<Scope.ScopeRef>) =>
  Effect.forEach(scopes, (scope) => Effect.map(spendOf(scope), (spend) => spend.held))

export const nanos = (value: bigint): Money.Money => Money.make(value)
