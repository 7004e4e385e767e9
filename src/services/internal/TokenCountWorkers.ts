/**
 * Token counts of very long texts, made on worker threads. Counting costs about half a
 * microsecond per token on the thread that does it: a 100,000-token prompt counted on
 * the event loop stops every other request of the host's server for some 50 ms. On a
 * worker the event loop stays free, and several counts run side by side.
 *
 * Workers start on the first long text (about a quarter of a second to load the
 * encoding); until one is ready, texts are counted on the calling thread, so no request
 * ever waits for a worker to start. A worker that fails is replaced on the next need,
 * and what it was counting is counted by the caller; after three that stopped before
 * they were ready, none is started again. Workers never keep the process alive, and
 * `close` stops them.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"
import { Predicate } from "effect"

/** @since 0.1.0 */
export interface TokenCountWorkers {
  /** The tokens of `text` from a worker; undefined when none is ready (count it yourself). */
  readonly count: (text: string) => Promise<number> | undefined
  /** Stops every worker; a count still under way rejects. */
  readonly close: () => Promise<void>
}

// CommonJS, evaluated: the worker needs no file of its own, bundled or built.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const { countTokens } = require(workerData.tokenizer)
const asText = { disallowedSpecial: new Set() }
parentPort.on("message", (job) => parentPort.postMessage({ id: job.id, tokens: countTokens(job.text, asText) }))
parentPort.postMessage({ ready: true })
`

const MAX_FAILED_STARTS = 3

interface Pending {
  readonly resolve: (tokens: number) => void
  readonly reject: (error: Error) => void
}

interface Slot {
  readonly worker: Worker
  readonly pending: Map<number, Pending>
  ready: boolean
}

/**
 * A pool of `size` workers counting with the `o200k_base` encoding.
 *
 * @example
 * const workers = make(1)
 * const tokens = (await workers.count(longText)) ?? countText(longText)
 * @since 0.1.0
 */
export const make = (size: number): TokenCountWorkers => {
  const tokenizer = createRequire(import.meta.url).resolve("gpt-tokenizer/encoding/o200k_base")
  const slots: Array<Slot> = []
  let nextId = 0
  let closed = false
  // Workers that stopped before they were ready: past a few, none is started again (the
  // encoding cannot load here), and every text is counted by the caller.
  let failedStarts = 0

  const failAll = (slot: Slot, error: Error) => {
    for (const pending of slot.pending.values()) pending.reject(error)
    slot.pending.clear()
  }

  const start = (): Slot => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { tokenizer } })
    worker.unref()
    const slot: Slot = { worker, pending: new Map(), ready: false }
    worker.on("message", (message: unknown) => {
      if (!Predicate.isRecord(message)) return
      if (message["ready"] === true) {
        slot.ready = true
        return
      }
      const id = message["id"]
      const tokens = message["tokens"]
      if (typeof id !== "number") return
      const pending = slot.pending.get(id)
      slot.pending.delete(id)
      if (pending === undefined) return
      if (typeof tokens === "number") pending.resolve(tokens)
      else pending.reject(new Error("a token count worker answered without a count"))
    })
    // A failing worker reports an error and then its exit: only the first counts.
    const gone = (error: Error) => {
      const index = slots.indexOf(slot)
      if (index === -1) return
      slots.splice(index, 1)
      if (!slot.ready && !closed) failedStarts++
      failAll(slot, error)
    }
    worker.on("error", gone)
    worker.on("exit", () => gone(new Error("a token count worker stopped")))
    return slot
  }

  return {
    count: (text) => {
      if (closed || size < 1 || failedStarts >= MAX_FAILED_STARTS) return undefined
      while (slots.length < size) slots.push(start())
      let best: Slot | undefined
      for (const slot of slots)
        if (slot.ready && (best === undefined || slot.pending.size < best.pending.size)) best = slot
      if (best === undefined) return undefined
      const slot = best
      const id = nextId++
      return new Promise<number>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject })
        slot.worker.postMessage({ id, text })
      })
    },
    close: async () => {
      closed = true
      const stopping = slots.splice(0).map((slot) => {
        failAll(slot, new Error("the token count workers were closed"))
        return slot.worker.terminate()
      })
      await Promise.all(stopping)
    }
  }
}
