/**
 * What the management operations run on: the store ports, the transaction runner
 * and the key-cache invalidation.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { NotFound } from "../../domain/Errors.js"
import type { AlreadyExists, EntityKind, Forbidden, InvalidRequest } from "../../domain/Errors.js"
import { BudgetRepo } from "../../store/BudgetRepo.js"
import { EndUserRepo } from "../../store/EndUserRepo.js"
import { KeyRepo } from "../../store/KeyRepo.js"
import { MembershipRepo } from "../../store/MembershipRepo.js"
import { OrganizationRepo } from "../../store/OrganizationRepo.js"
import type { StoreError } from "../../store/StoreError.js"
import { SpendLogRepo } from "../../store/SpendLogRepo.js"
import { StoreTransaction } from "../../store/StoreTransaction.js"
import { TeamRepo } from "../../store/TeamRepo.js"
import { UserRepo } from "../../store/UserRepo.js"
import { Invalidation } from "../Invalidation.js"

/** Every failure of a management operation. @since 0.1.0 */
export type AdminError = Forbidden | NotFound | AlreadyExists | InvalidRequest | StoreError

/** @since 0.1.0 */
export const make = Effect.all({
  teams: TeamRepo,
  users: UserRepo,
  organizations: OrganizationRepo,
  endUsers: EndUserRepo,
  keys: KeyRepo,
  memberships: MembershipRepo,
  budgets: BudgetRepo,
  spendLogs: SpendLogRepo,
  transaction: StoreTransaction,
  invalidation: Invalidation
})

/** @since 0.1.0 */
export type AdminPorts = Effect.Effect.Success<typeof make>

/**
 * Runs the reads and writes of one operation as one store transaction, then tells
 * the key caches that something changed (only once the transaction has committed).
 *
 * @since 0.1.0
 */
export const write =
  (ports: AdminPorts) =>
  <A, E, R>(unit: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    ports.transaction.run(unit).pipe(Effect.tap(() => ports.invalidation.publish))

/** Runs the reads of one operation as one store transaction, for a consistent view. @since 0.1.0 */
export const read =
  (ports: AdminPorts) =>
  <A, E, R>(unit: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    ports.transaction.run(unit)

/**
 * The value of a lookup, or `NotFound` for that entity.
 *
 * @since 0.1.0
 */
export const found =
  (entity: EntityKind, id: string) =>
  <A, E, R>(lookup: Effect.Effect<Option.Option<A>, E, R>): Effect.Effect<A, E | NotFound, R> =>
    Effect.flatMap(
      lookup,
      Option.match({
        onNone: () => Effect.fail(new NotFound({ entity, id })),
        onSome: Effect.succeed
      })
    )
