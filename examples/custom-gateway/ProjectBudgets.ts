/**
 * An extra budget scope the SDK does not have: projects. A request names its project;
 * the project's budget is held, settled and released alongside the SDK's own scopes,
 * with the same rule (`spent + held + request <= max`, all or nothing, in one atomic
 * step on a `Ref`).
 */
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"
import { Money } from "../../src/index.js"

export class ProjectBudgetExceeded extends Schema.TaggedError<ProjectBudgetExceeded>()(
  "ProjectBudgetExceeded",
  {
    project: Schema.String,
    spent: Money.Nanos,
    held: Money.Nanos,
    maxBudget: Money.Nanos,
    requested: Money.Nanos
  }
) {
  override get message(): string {
    return (
      `Budget exceeded for project ${this.project}: spent ${Money.format(this.spent)} ` +
      `(${Money.format(this.held)} held) of ${Money.format(this.maxBudget)}, ` +
      `this request needs up to ${Money.format(this.requested)}.`
    )
  }
}

export class UnknownProject extends Schema.TaggedError<UnknownProject>()("UnknownProject", {
  project: Schema.String
}) {}

export interface ProjectSpend {
  readonly maxBudget: Money.Money
  readonly spent: Money.Money
  readonly held: Money.Money
}

export interface ProjectHold {
  readonly project: string
  readonly amount: Money.Money
}

export interface ProjectBudgetsShape {
  readonly hold: (
    project: string,
    amount: Money.Money
  ) => Effect.Effect<ProjectHold, ProjectBudgetExceeded | UnknownProject>
  /** Replaces the hold with the real cost. */
  readonly settle: (hold: ProjectHold, cost: Money.Money) => Effect.Effect<void>
  readonly release: (hold: ProjectHold) => Effect.Effect<void>
  readonly spendOf: (project: string) => Effect.Effect<ProjectSpend, UnknownProject>
}

export class ProjectBudgets extends Context.Tag("custom-gateway/ProjectBudgets")<
  ProjectBudgets,
  ProjectBudgetsShape
>() {}

type State = ReadonlyMap<string, ProjectSpend>

const update = (state: State, project: string, f: (spend: ProjectSpend) => ProjectSpend): State =>
  Option.match(Option.fromNullable(state.get(project)), {
    onNone: () => state,
    onSome: (spend) => new Map(state).set(project, f(spend))
  })

/** Projects and their budgets in USD, kept in memory. */
export const layer = (budgets: Readonly<Record<string, number>>): Layer.Layer<ProjectBudgets> =>
  Layer.effect(
    ProjectBudgets,
    Effect.map(
      Ref.make<State>(
        new Map(
          Object.entries(budgets).map(([project, usd]) => [
            project,
            { maxBudget: Money.fromUsd(usd) ?? Money.zero, spent: Money.zero, held: Money.zero }
          ])
        )
      ),
      (ref): ProjectBudgetsShape => ({
        hold: (project, amount) =>
          Effect.flatten(
            Ref.modify(
              ref,
              (state): [Effect.Effect<ProjectHold, ProjectBudgetExceeded | UnknownProject>, State] => {
                const spend = state.get(project)
                if (spend === undefined) return [Effect.fail(new UnknownProject({ project })), state]
                if (spend.spent + spend.held + amount > spend.maxBudget) {
                  return [
                    Effect.fail(new ProjectBudgetExceeded({ project, ...spend, requested: amount })),
                    state
                  ]
                }
                return [
                  Effect.succeed({ project, amount }),
                  update(state, project, (s) => ({
                    ...s,
                    held: Money.add(s.held, amount)
                  }))
                ]
              }
            )
          ),
        settle: (hold, cost) =>
          Ref.update(ref, (state) =>
            update(state, hold.project, (s) => ({
              ...s,
              held: Money.minus(s.held, hold.amount),
              spent: Money.add(s.spent, cost)
            }))
          ),
        release: (hold) =>
          Ref.update(ref, (state) =>
            update(state, hold.project, (s) => ({ ...s, held: Money.minus(s.held, hold.amount) }))
          ),
        spendOf: (project) =>
          Effect.flatMap(Ref.get(ref), (state) =>
            Option.match(Option.fromNullable(state.get(project)), {
              onNone: () => Effect.fail(new UnknownProject({ project })),
              onSome: Effect.succeed
            })
          )
      })
    )
  )
