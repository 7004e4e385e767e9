/**
 * The token estimate of a chat that resends its history with every turn, as chat
 * clients do: counting every text of every request, against remembering the counts of
 * long texts (the estimator's default). Each request adds one new user message, never
 * seen before, to a history of `turns` messages of about 2,000 characters and two tool
 * definitions; texts come from this repository's README, at a different place per
 * message. Everything is counted on this thread (`workerCountFrom: 0`): the figures are
 * the CPU an estimate costs.
 */
import { readFileSync } from "node:fs"
import { Effect } from "effect"
import { TokenEstimator } from "../src/index.js"
import { fmt, percentile } from "./stats.js"

const CORPUS = readFileSync(new URL("../README.md", import.meta.url), "utf8")
const MESSAGE_CHARS = 2_000
const REQUESTS = 40

const passage = (n: number): string => {
  const start = (n * 997) % Math.max(1, CORPUS.length - MESSAGE_CHARS)
  return `${CORPUS.slice(start, start + MESSAGE_CHARS)} (${n})`
}

const tools = [1, 2].map((n) => ({
  type: "function",
  function: {
    name: `tool_${n}`,
    description: passage(10_000 + n).slice(0, 600),
    parameters: {
      type: "object",
      properties: { query: { type: "string", description: passage(n).slice(0, 300) } }
    }
  }
}))

const estimatorWith = (cachedCounts: number) =>
  Effect.runSync(
    Effect.provide(
      TokenEstimator.TokenEstimator,
      TokenEstimator.layerWith({ cachedCounts, workerCountFrom: 0 })
    )
  )

/** Microseconds per estimate of each of `REQUESTS` requests: the history, then a new message. */
const timings = (cachedCounts: number, turns: number): ReadonlyArray<number> => {
  const estimator = estimatorWith(cachedCounts)
  const history = Array.from({ length: turns }, (_, i) => ({
    role: i % 2 === 0 ? "user" : "assistant",
    content: passage(i)
  }))
  const body = (n: number) => ({
    model: "gpt-4o",
    messages: [...history, { role: "user", content: passage(100_000 + turns * 1_000 + n) }],
    tools,
    max_tokens: 500
  })
  // The turn before: the history as the previous request sent it.
  Effect.runSync(estimator.estimate({ model: "gpt-4o", messages: history, tools, max_tokens: 500 }))
  const times: Array<number> = []
  for (let n = 0; n < REQUESTS; n++) {
    const request = body(n)
    const start = process.hrtime.bigint()
    Effect.runSync(estimator.estimate(request))
    times.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  return times.sort((a, b) => a - b)
}

export const run = async (): Promise<string> => {
  const rows: Array<string> = []
  // Warm-up: the tokenizer's and the schema's code compiled before anything is timed.
  timings(0, 8)
  timings(TokenEstimator.DEFAULT_CACHED_COUNTS, 8)
  for (const turns of [4, 16, 64]) {
    const counted = percentile(timings(0, turns), 50)
    const remembered = percentile(timings(TokenEstimator.DEFAULT_CACHED_COUNTS, turns), 50)
    rows.push(
      `| ${turns} messages + 1 new (about ${fmt(((turns + 1) * MESSAGE_CHARS) / 1000, 0)} KB) | ${fmt(counted, 0)} | ${fmt(remembered, 0)} | **${fmt(counted / remembered, 1)}×** |`
    )
  }
  return [
    "### Token estimate: a chat that resends its history",
    "",
    `Median of ${REQUESTS} requests, each the history plus one new message of about ${MESSAGE_CHARS} characters, and two tool definitions.`,
    "",
    "| request | every text counted, µs | long texts' counts remembered, µs | ratio |",
    "| --- | ---: | ---: | ---: |",
    ...rows,
    ""
  ].join("\n")
}
