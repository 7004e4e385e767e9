/** Small helpers shared by the benchmarks: options, timing and percentiles. */

export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? Number.NaN
}

/**
 * Runs `once` in batches and returns the per-call time of every batch, in microseconds,
 * sorted. Batching keeps the clock's own cost out of the figure.
 */
export const timeBatches = async (
  once: () => Promise<unknown>,
  options: { batches: number; batchSize: number; warmup: number }
): Promise<ReadonlyArray<number>> => {
  for (let i = 0; i < options.warmup; i++) await once()
  const perCall: Array<number> = []
  for (let b = 0; b < options.batches; b++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < options.batchSize; i++) await once()
    const elapsed = Number(process.hrtime.bigint() - start) / 1000
    perCall.push(elapsed / options.batchSize)
  }
  return perCall.sort((a, b) => a - b)
}

export const fmt = (value: number, digits = 2): string => value.toFixed(digits)

/** The value after `--name` on the command line, if given. */
export const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i === -1 ? undefined : process.argv[i + 1]
}
