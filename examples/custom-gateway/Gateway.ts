/**
 * A gateway composed from the SDK's services in Effect, without HTTP: `TokenEstimator`
 * reads the request, `BudgetPolicy` authorises and holds on every SDK scope (key,
 * user, member, team, organization, end user), the gateway's own `ProjectBudgets`
 * holds on the project, the model answers, and both settle with the real cost. A
 * refusal or a failure anywhere gives back every hold already placed.
 */
import { Context, Effect, Exit, Layer, Option } from "effect"
import {
  BudgetPolicy,
  type Money,
  type Pricing,
  TokenEstimator,
  type TeamBudgetError,
  UpstreamFailed
} from "../../src/index.js"
import { type ProjectBudgetExceeded, ProjectBudgets, type UnknownProject } from "./ProjectBudgets.js"

/** The model behind the gateway, as a port: a provider SDK, a local model, a test double. */
export interface ChatModelShape {
  readonly complete: (
    body: unknown
  ) => Effect.Effect<{ readonly text: string; readonly usage: Pricing.Usage }, UpstreamFailed>
}

export class ChatModel extends Context.Tag("custom-gateway/ChatModel")<ChatModel, ChatModelShape>() {}

export interface CompletionRequest {
  readonly apiKey: string
  readonly project: string
  /** An OpenAI chat completion body. */
  readonly body: unknown
}

export interface Completion {
  readonly text: string
  readonly usage: Pricing.Usage
  readonly cost: Money.Money
}

export type GatewayError = TeamBudgetError | ProjectBudgetExceeded | UnknownProject

export interface GatewayShape {
  readonly complete: (request: CompletionRequest) => Effect.Effect<Completion, GatewayError>
}

export class Gateway extends Context.Tag("custom-gateway/Gateway")<Gateway, GatewayShape>() {}

export const make = Effect.gen(function* () {
  const estimator = yield* TokenEstimator.TokenEstimator
  const policy = yield* BudgetPolicy.BudgetPolicy
  const projects = yield* ProjectBudgets
  const model = yield* ChatModel

  const complete = (request: CompletionRequest): Effect.Effect<Completion, GatewayError> =>
    Effect.gen(function* () {
      const estimate = yield* estimator.estimate(request.body)
      const maxOutputTokens = Option.getOrUndefined(estimate.maxOutputTokens)
      // Each hold is given back unless the request is settled: on a refusal further on,
      // a model failure, or an interruption.
      return yield* Effect.acquireUseRelease(
        policy.authorize({
          apiKey: request.apiKey,
          model: estimate.model,
          promptTokens: estimate.promptTokens,
          ...(maxOutputTokens === undefined ? {} : { maxOutputTokens })
        }),
        (admission) =>
          Effect.acquireUseRelease(
            projects.hold(request.project, admission.estimate),
            (hold) =>
              Effect.gen(function* () {
                const reply = yield* model.complete(request.body)
                const settlement = yield* policy.settle(admission, reply.usage)
                yield* projects.settle(hold, settlement.cost)
                return { text: reply.text, usage: reply.usage, cost: settlement.cost }
              }),
            (hold, exit) => (Exit.isSuccess(exit) ? Effect.void : projects.release(hold))
          ),
        (admission, exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(policy.release(admission)))
      )
    })

  return Gateway.of({ complete })
})

export const layer: Layer.Layer<
  Gateway,
  never,
  TokenEstimator.TokenEstimator | BudgetPolicy.BudgetPolicy | ProjectBudgets | ChatModel
> = Layer.effect(Gateway, make)

/** A model that answers in process: the gateway runs offline. */
export const echoModel: Layer.Layer<ChatModel> = Layer.succeed(ChatModel, {
  complete: (body) =>
    Effect.suspend(() => {
      const text = "An answer from the in-process model."
      const estimate = TokenEstimator.estimateBody(body)
      return estimate._tag === "Left"
        ? Effect.fail(new UpstreamFailed({ status: 400, detail: "the model could not read the request" }))
        : Effect.succeed({
            text,
            usage: {
              promptTokens: estimate.right.promptTokens,
              completionTokens: TokenEstimator.countText(text)
            }
          })
    })
})
