/**
 * teambudget: an embeddable budget and rate-limit SDK for LLM API traffic.
 *
 * @since 0.1.0
 */

// Domain
export * as Budget from "./domain/Budget.js"
export * as BudgetDuration from "./domain/BudgetDuration.js"
export * as BudgetEvent from "./domain/BudgetEvent.js"
export * as BudgetWindow from "./domain/BudgetWindow.js"
export * as EndUser from "./domain/EndUser.js"
export * as Errors from "./domain/Errors.js"
export * from "./domain/Errors.js"
export * as Ids from "./domain/Ids.js"
export * as Limits from "./domain/Limits.js"
export * as Metadata from "./domain/Metadata.js"
export * as Money from "./domain/Money.js"
export * as Organization from "./domain/Organization.js"
export * as Principal from "./domain/Principal.js"
export * as Scope from "./domain/Scope.js"
export * as Spend from "./domain/Spend.js"
export * as SpendLog from "./domain/SpendLog.js"
export * as Team from "./domain/Team.js"
export * as TeamMembership from "./domain/TeamMembership.js"
export * as Token from "./domain/Token.js"
export * as User from "./domain/User.js"
export * as VirtualKey from "./domain/VirtualKey.js"

// Store ports
export { BudgetRepo } from "./store/BudgetRepo.js"
export { EndUserRepo } from "./store/EndUserRepo.js"
export { EventClaims } from "./store/EventClaims.js"
export { KeyRepo } from "./store/KeyRepo.js"
export { MembershipRepo } from "./store/MembershipRepo.js"
export { OrganizationRepo } from "./store/OrganizationRepo.js"
export * as RateArithmetic from "./store/RateArithmetic.js"
export { RateLimitStore } from "./store/RateLimitStore.js"
export type * as RateLimits from "./store/RateLimitStore.js"
export { SpendLedger } from "./store/SpendLedger.js"
export type * as Ledger from "./store/SpendLedger.js"
export { SpendLogRepo } from "./store/SpendLogRepo.js"
export type { StoreError } from "./store/StoreError.js"
export { StoreTransaction } from "./store/StoreTransaction.js"
export { TeamRepo } from "./store/TeamRepo.js"
export { UserRepo } from "./store/UserRepo.js"

// Services
export * as BudgetEvents from "./services/BudgetEvents.js"
export * as BudgetPolicy from "./services/BudgetPolicy.js"
export * as BudgetWebhook from "./services/BudgetWebhook.js"
export * as Invalidation from "./services/Invalidation.js"
export * as KeyAuth from "./services/KeyAuth.js"
export * as Metrics from "./services/Metrics.js"
export * as Pricing from "./services/Pricing.js"
export * as RateLimiter from "./services/RateLimiter.js"
export * as TokenEstimator from "./services/TokenEstimator.js"

// Stores (each helper line below adds one)
export * as MemoryRateLimits from "./store/memory/MemoryRateLimits.js"
export * as MemoryStore from "./store/memory/MemoryStore.js"
export * as RedisRateLimits from "./store/redis/RedisRateLimits.js"
export type { StoreServices } from "./store/StoreServices.js"

// Management API
export * as Admin from "./services/Admin.js"
export * as Api from "./api/index.js"
export * as SqlStore from "./store/sql/SqlStore.js"

// Composition
export * as Operations from "./api/Operations.js"
export * as TeamBudget from "./TeamBudget.js"

// HTTP (framework adapters: teambudget/hono, teambudget/express, teambudget/fastify)
export * as ErrorResponse from "./http/ErrorResponse.js"
export * as Exchange from "./http/Exchange.js"
export * as LlmGuard from "./http/LlmGuard.js"
export * as ManagementApi from "./http/ManagementApi.js"
export * as NodeBridge from "./http/NodeBridge.js"
