/**
 * Every service a complete store provides. Each store (memory, SQLite, PostgreSQL)
 * offers one layer with all of them, so the services above it never know which
 * store they run on.
 *
 * @since 0.1.0
 */
import type { BudgetRepo } from "./BudgetRepo.js"
import type { EndUserRepo } from "./EndUserRepo.js"
import type { EventClaims } from "./EventClaims.js"
import type { KeyRepo } from "./KeyRepo.js"
import type { MembershipRepo } from "./MembershipRepo.js"
import type { OrganizationRepo } from "./OrganizationRepo.js"
import type { RateLimitStore } from "./RateLimitStore.js"
import type { SpendLedger } from "./SpendLedger.js"
import type { SpendLogRepo } from "./SpendLogRepo.js"
import type { StoreTransaction } from "./StoreTransaction.js"
import type { TeamRepo } from "./TeamRepo.js"
import type { UserRepo } from "./UserRepo.js"

/** @since 0.1.0 */
export type StoreServices =
  | TeamRepo
  | UserRepo
  | OrganizationRepo
  | EndUserRepo
  | KeyRepo
  | MembershipRepo
  | BudgetRepo
  | SpendLogRepo
  | SpendLedger
  | StoreTransaction
  | RateLimitStore
  | EventClaims
