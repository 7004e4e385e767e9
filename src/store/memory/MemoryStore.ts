/**
 * The memory store: every store service over plain maps in this process. It is for
 * tests and throwaway use: nothing survives the process, and several processes do
 * not share budgets. Each operation is atomic; `StoreTransaction` runs one unit at a
 * time but cannot roll back the writes of a unit that fails.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer } from "effect"
import { BudgetRepo } from "../BudgetRepo.js"
import { EndUserRepo } from "../EndUserRepo.js"
import { EventClaims } from "../EventClaims.js"
import { KeyRepo } from "../KeyRepo.js"
import { MembershipRepo } from "../MembershipRepo.js"
import { OrganizationRepo } from "../OrganizationRepo.js"
import { RateLimitStore } from "../RateLimitStore.js"
import { SpendLedger } from "../SpendLedger.js"
import { SpendLogRepo } from "../SpendLogRepo.js"
import type { StoreServices } from "../StoreServices.js"
import { layerSerial } from "../StoreTransaction.js"
import { TeamRepo } from "../TeamRepo.js"
import { UserRepo } from "../UserRepo.js"
import * as MemoryBudgetRepo from "./MemoryBudgetRepo.js"
import * as MemoryEndUserRepo from "./MemoryEndUserRepo.js"
import * as MemoryEventClaims from "./MemoryEventClaims.js"
import * as MemoryKeyRepo from "./MemoryKeyRepo.js"
import * as MemoryLedger from "./MemoryLedger.js"
import * as MemoryMembershipRepo from "./MemoryMembershipRepo.js"
import * as MemoryOrganizationRepo from "./MemoryOrganizationRepo.js"
import * as MemoryRateLimits from "./MemoryRateLimits.js"
import * as MemorySpendLogRepo from "./MemorySpendLogRepo.js"
import * as MemoryState from "./MemoryState.js"
import * as MemoryTeamRepo from "./MemoryTeamRepo.js"
import * as MemoryUserRepo from "./MemoryUserRepo.js"

/** @since 0.1.0 */
export interface MemoryStoreOptions {
  /** How long a hold lives before its money is reclaimed. Default 15 minutes. */
  readonly holdTtl?: Duration.DurationInput
  /**
   * Spend log rows kept, newest first; older ones are dropped. Default: all of them.
   * The markers that refuse a second settle or release of a closed hold are kept for as
   * many holds (and at most four hold TTLs); a hold closed longer ago than that, settled
   * again, is charged as a late settlement.
   */
  readonly spendLogCapacity?: number
}

const DEFAULT_HOLD_TTL = Duration.minutes(15)

/**
 * Every store service over one fresh, empty memory state. Each build of the layer
 * makes its own state.
 *
 * @example
 * import { Effect } from "effect"
 * import { MemoryStore, TeamRepo } from "teambudget"
 *
 * const program = Effect.flatMap(TeamRepo, (teams) => teams.list())
 * Effect.runPromise(Effect.provide(program, MemoryStore.layer({ holdTtl: "5 minutes" })))
 * @since 0.1.0
 */
export const layer = (options: MemoryStoreOptions = {}): Layer.Layer<StoreServices> =>
  Layer.merge(
    Layer.effectContext(
      Effect.sync(() => {
        const state = MemoryState.make(
          Duration.toMillis(Duration.decode(options.holdTtl ?? DEFAULT_HOLD_TTL)),
          options.spendLogCapacity ?? Number.POSITIVE_INFINITY
        )
        return Context.make(TeamRepo, MemoryTeamRepo.make(state)).pipe(
          Context.add(UserRepo, MemoryUserRepo.make(state)),
          Context.add(OrganizationRepo, MemoryOrganizationRepo.make(state)),
          Context.add(EndUserRepo, MemoryEndUserRepo.make(state)),
          Context.add(KeyRepo, MemoryKeyRepo.make(state)),
          Context.add(MembershipRepo, MemoryMembershipRepo.make(state)),
          Context.add(BudgetRepo, MemoryBudgetRepo.make(state)),
          Context.add(SpendLogRepo, MemorySpendLogRepo.make(state)),
          Context.add(SpendLedger, MemoryLedger.make(state)),
          Context.add(RateLimitStore, MemoryRateLimits.make(MemoryRateLimits.makeState())),
          Context.add(EventClaims, MemoryEventClaims.make())
        )
      })
    ),
    layerSerial
  )
