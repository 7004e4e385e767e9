/**
 * One autocannon round against an LLM route, and the mean of several rounds: what the
 * HTTP, proxy and scaling benchmarks all measure.
 */
import autocannon from "autocannon"

/** What one round (or the mean of rounds) measured. */
export interface Figures {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
}

/** The figures of one finished autocannon run. */
export const figuresOf = (result: autocannon.Result): Figures => ({
  rps: result.requests.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  errors: result.errors + result.non2xx + result.timeouts
})

/** `connections` clients posting `body` with `key` to `url` for `seconds`. */
export const load = async (
  url: string,
  key: string,
  body: string,
  seconds: number,
  connections: number
): Promise<Figures> =>
  figuresOf(
    await autocannon({
      url,
      method: "POST",
      connections,
      pipelining: 1,
      duration: seconds,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body
    })
  )

/** The mean of rounds; errors are summed. */
export const mean = (figures: ReadonlyArray<Figures>): Figures => ({
  rps: figures.reduce((sum, f) => sum + f.rps, 0) / figures.length,
  p50: figures.reduce((sum, f) => sum + f.p50, 0) / figures.length,
  p99: figures.reduce((sum, f) => sum + f.p99, 0) / figures.length,
  errors: figures.reduce((sum, f) => sum + f.errors, 0)
})
