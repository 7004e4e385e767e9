/**
 * One autocannon round against an LLM route, and the mean of several rounds: what the
 * HTTP, proxy and scaling benchmarks all measure.
 *
 * Latencies are the exact response times autocannon reports for each 2xx response.
 * Its own histogram keeps whole milliseconds only, which turns a difference of 0.3 ms
 * into 0 or 1 ms by chance, and the proxy's target is about differences that small.
 */
import autocannon from "autocannon"
import { percentile } from "./stats.js"

/** What one round (or the mean of rounds) measured. */
export interface Figures {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
}

/** One autocannon run, with the latency of every successful response recorded exactly. */
export const run = (options: autocannon.Options): Promise<Figures> =>
  new Promise((resolve, reject) => {
    const latencies: Array<number> = []
    const instance = autocannon(options, (error: unknown, result: autocannon.Result) => {
      if (error !== null && error !== undefined)
        return reject(error instanceof Error ? error : new Error(String(error)))
      latencies.sort((a, b) => a - b)
      resolve({
        rps: result.requests.average,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        errors: result.errors + result.non2xx + result.timeouts
      })
    })
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
  })

/** `connections` clients posting `body` with `key` to `url` for `seconds`. */
export const load = (
  url: string,
  key: string,
  body: string,
  seconds: number,
  connections: number
): Promise<Figures> =>
  run({
    url,
    method: "POST",
    connections,
    pipelining: 1,
    duration: seconds,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body
  })

/** The mean of rounds; errors are summed. */
export const mean = (figures: ReadonlyArray<Figures>): Figures => ({
  rps: figures.reduce((sum, f) => sum + f.rps, 0) / figures.length,
  p50: figures.reduce((sum, f) => sum + f.p50, 0) / figures.length,
  p99: figures.reduce((sum, f) => sum + f.p99, 0) / figures.length,
  errors: figures.reduce((sum, f) => sum + f.errors, 0)
})
