/**
 * The Promise facade, for code that does not use Effect: one constructor returning
 * `authorize`, `settle`, `release` and every management operation as async functions.
 * A rejected promise carries the same tagged error classes as the Effect API
 * (`BudgetExceeded`, `InvalidRequest`, ...), so `error._tag` tells them apart.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, type Layer, ManagedRuntime } from "effect"
import * as Routes from "./api/Routes.js"
import { master } from "./domain/Principal.js"
import type { SpendStatus } from "./domain/SpendLog.js"
import { type BudgetEventCallback, subscribe } from "./services/events/Callback.js"
import type { Admission, AuthorizeRequest } from "./services/BudgetPolicy.js"
import { BudgetPolicy } from "./services/BudgetPolicy.js"
import type { Invalidation } from "./services/Invalidation.js"
import type { Usage } from "./services/Pricing.js"
import { type Estimate, TokenEstimator } from "./services/TokenEstimator.js"
import type { Settlement } from "./store/SpendLedger.js"
import * as SqlStore from "./store/sql/SqlStore.js"
import type { StoreServices } from "./store/StoreServices.js"
import * as TeamBudget from "./TeamBudget.js"

export type { BudgetEventCallback } from "./services/events/Callback.js"

type Table = typeof Routes.byName

/**
 * Every management operation, by method name (`teamNew` is `POST /team/new`): the
 * same LiteLLM JSON in and out as the HTTP API, acting as the master key.
 *
 * @since 0.1.0
 */
export type AdminClient = {
  readonly [Name in keyof Table]: (input?: unknown) => Promise<Routes.Output<Table[Name]>>
}

/** @since 0.1.0 */
export interface TeamBudgetClient {
  /** Authenticates the key and holds the request's worst-case cost on every scope. */
  readonly authorize: (request: AuthorizeRequest) => Promise<Admission>
  /** Charges the real usage in place of the hold. */
  readonly settle: (admission: Admission, usage: Usage, status?: SpendStatus) => Promise<Settlement>
  /** Gives the hold back: the upstream call failed. */
  readonly release: (admission: Admission) => Promise<void>
  /** Prompt tokens and output cap of an OpenAI request body. */
  readonly estimate: (body: unknown) => Promise<Estimate>
  /** Every management operation, acting as the master key. */
  readonly admin: AdminClient
  /**
   * Calls `callback` with every budget event from now on; returns the function that
   * stops it. A callback that throws is logged and never breaks a request.
   */
  readonly onBudgetEvent: (callback: BudgetEventCallback) => () => void
  /** The runtime behind the facade, to run Effect programs against the same services. */
  readonly runtime: ManagedRuntime.ManagedRuntime<TeamBudget.Services, unknown>
  /** Closes the store's connections. */
  readonly close: () => Promise<void>
}

/** @since 0.1.0 */
export interface CreateOptions extends TeamBudget.TeamBudgetOptions<unknown> {
  /**
   * `memory:` (the default), `sqlite:PATH` or a `postgres://` URL, as
   * `SqlStore.layerFromUrl` reads them (`memory:` keeps the newest 100,000 spend-log
   * rows; `memory:?spend_log_capacity=N` keeps N). Ignored when `store` is given.
   */
  readonly databaseUrl?: string
  /** A store layer of your own (for example `SqlStore.layer()` over your own pool). */
  readonly store?: Layer.Layer<StoreServices | Invalidation, unknown>
}

/**
 * Builds the services and returns them as async functions.
 *
 * @example
 * import { createTeamBudget } from "teambudget/promise"
 *
 * const budget = await createTeamBudget({ databaseUrl: "sqlite:.teambudget/teambudget.db" })
 * const team = await budget.admin.teamNew({ team_alias: "research", max_budget: 100 })
 * const admission = await budget.authorize({ apiKey, model: "gpt-4o-mini", promptTokens: 20 })
 * await budget.settle(admission, { promptTokens: 20, completionTokens: 120 })
 * @since 0.1.0
 */
export const createTeamBudget = async (options: CreateOptions = {}): Promise<TeamBudgetClient> => {
  const store = options.store ?? SqlStore.layerFromUrl(options.databaseUrl ?? "memory:")
  const runtime = ManagedRuntime.make(TeamBudget.layer(store, options))
  // Fail at construction, not on the first call, when the store cannot be opened.
  await run(runtime, Effect.void)
  const policy = await run(runtime, BudgetPolicy)
  const estimator = await run(runtime, TokenEstimator)
  const bind =
    <Out>(route: Routes.Route<Out>) =>
    (input: unknown = {}): Promise<Out> =>
      run(runtime, route.handle(master, input))
  const table = Routes.byName
  const admin: AdminClient = {
    teamNew: bind(table.teamNew),
    teamUpdate: bind(table.teamUpdate),
    teamMemberAdd: bind(table.teamMemberAdd),
    teamMemberUpdate: bind(table.teamMemberUpdate),
    teamMemberDelete: bind(table.teamMemberDelete),
    teamInfo: bind(table.teamInfo),
    teamDelete: bind(table.teamDelete),
    keyGenerate: bind(table.keyGenerate),
    keyUpdate: bind(table.keyUpdate),
    keyInfo: bind(table.keyInfo),
    keyDelete: bind(table.keyDelete),
    keyBlock: bind(table.keyBlock),
    keyUnblock: bind(table.keyUnblock),
    userNew: bind(table.userNew),
    userUpdate: bind(table.userUpdate),
    userInfo: bind(table.userInfo),
    organizationNew: bind(table.organizationNew),
    organizationUpdate: bind(table.organizationUpdate),
    organizationInfo: bind(table.organizationInfo),
    customerNew: bind(table.customerNew),
    customerUpdate: bind(table.customerUpdate),
    customerInfo: bind(table.customerInfo),
    spendLogs: bind(table.spendLogs),
    globalBudgetUpdate: bind(table.globalBudgetUpdate),
    globalBudgetInfo: bind(table.globalBudgetInfo)
  }
  return {
    authorize: (request) => run(runtime, policy.authorize(request)),
    settle: (admission, usage, status) => run(runtime, policy.settle(admission, usage, status)),
    release: (admission) => run(runtime, policy.release(admission)),
    estimate: (body) => run(runtime, estimator.estimate(body)),
    admin,
    onBudgetEvent: (callback) => subscribe(runtime, callback),
    runtime,
    close: () => runtime.dispose()
  }
}

/** Runs an effect and rejects with the error itself (not a wrapper), so `_tag` is visible. */
const run = async <A, E>(
  runtime: ManagedRuntime.ManagedRuntime<TeamBudget.Services, unknown>,
  effect: Effect.Effect<A, E, TeamBudget.Services>
): Promise<A> => {
  const exit = await runtime.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}
