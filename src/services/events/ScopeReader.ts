/**
 * Reads a scope's limits and spend through the store ports, fresh (never from the
 * key cache), for the budget events.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { BudgetId } from "../../domain/Ids.js"
import * as Limits from "../../domain/Limits.js"
import * as Scope from "../../domain/Scope.js"
import type { SpendSnapshot } from "../../domain/Spend.js"
import { BudgetRepo, GLOBAL_BUDGET_ID } from "../../store/BudgetRepo.js"
import { EndUserRepo } from "../../store/EndUserRepo.js"
import { KeyRepo } from "../../store/KeyRepo.js"
import { MembershipRepo } from "../../store/MembershipRepo.js"
import { OrganizationRepo } from "../../store/OrganizationRepo.js"
import { SpendLedger } from "../../store/SpendLedger.js"
import type { StoreError } from "../../store/StoreError.js"
import { TeamRepo } from "../../store/TeamRepo.js"
import { UserRepo } from "../../store/UserRepo.js"
import type { Reading } from "./Crossings.js"

const globalId = BudgetId.make(GLOBAL_BUDGET_ID, { disableValidation: true })

/** The ports a reader needs. @since 0.1.0 */
export type Requirements =
  KeyRepo | UserRepo | MembershipRepo | TeamRepo | OrganizationRepo | EndUserRepo | BudgetRepo | SpendLedger

/** @since 0.1.0 */
export type ReadScope = (ref: Scope.ScopeRef) => Effect.Effect<Option.Option<Reading>, StoreError>

interface Row {
  readonly limits: Limits.Limits
  readonly spend: SpendSnapshot
}

/**
 * A reader over the repositories. A scope without a row (a deleted team, say) reads
 * as none.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<ReadScope, never, Requirements> = Effect.gen(function* () {
  const keys = yield* KeyRepo
  const users = yield* UserRepo
  const memberships = yield* MembershipRepo
  const teams = yield* TeamRepo
  const organizations = yield* OrganizationRepo
  const endUsers = yield* EndUserRepo
  const budgets = yield* BudgetRepo
  const ledger = yield* SpendLedger

  const reading =
    (ref: Scope.ScopeRef, id: string, idKey: string = Scope.key(ref)) =>
    (row: Option.Option<Row>): Option.Option<Reading> =>
      Option.map(row, ({ limits, spend }) => ({ scope: { kind: ref.kind, id }, idKey, limits, spend }))

  const read: ReadScope = (ref) => {
    switch (ref.kind) {
      case "key":
        return Effect.map(keys.find(ref.id), (found) =>
          Option.flatMap(found, (key) => reading(ref, key.keyId, `key:${key.keyId}`)(Option.some(key)))
        )
      case "user":
        return Effect.map(users.find(ref.id), reading(ref, ref.id))
      case "membership":
        return Effect.map(memberships.find(ref.teamId, ref.userId), (found): Option.Option<Reading> =>
          reading(
            ref,
            Scope.displayId(ref)
          )(
            Option.map(found, (membership) => ({
              limits: Option.match(membership.budget, { onNone: () => Limits.none, onSome: (b) => b.limits }),
              spend: membership.spend
            }))
          )
        )
      case "team":
        return Effect.map(teams.find(ref.id), reading(ref, ref.id))
      case "organization":
        return Effect.map(organizations.find(ref.id), reading(ref, ref.id))
      case "end_user":
        return Effect.map(endUsers.find(ref.id), reading(ref, ref.id))
      case "global":
        return Effect.flatMap(budgets.find(globalId), (budget) =>
          Option.isNone(budget)
            ? Effect.succeed(Option.none())
            : Effect.map(ledger.spendOf(ref), (spend) =>
                reading(ref, "global")(Option.some({ limits: budget.value.limits, spend }))
              )
        )
    }
  }
  return read
})
