/**
 * Spans that cost nothing when nobody records them.
 *
 * A span made through Effect's built-in tracer, the one every runtime has when the
 * host installed none, is never exported, yet `Effect.fn` still pays for it (a
 * stack capture and a span per call: more than the rest of a budget check). So the
 * hot path asks which tracer is current and makes the span only for a real one,
 * such as OpenTelemetry's.
 *
 * @since 0.1.0
 */
import { Effect, type Tracer } from "effect"

const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `Effect.fn(name)(body)` when the host installed a tracer; `body` itself otherwise.
 *
 * @example
 * const authorize = traced("BudgetPolicy.authorize", (request: Request) => check(request))
 * @since 0.1.0
 */
export const traced = <Args extends Array<unknown>, A, E, R>(
  name: string,
  body: (...args: Args) => Effect.Effect<A, E, R>
): ((...args: Args) => Effect.Effect<A, E, R>) => {
  const withSpan = Effect.fn(name)(body)
  return (...args) =>
    Effect.tracerWith((tracer) => (tracer === builtInTracer ? body(...args) : withSpan(...args)))
}
