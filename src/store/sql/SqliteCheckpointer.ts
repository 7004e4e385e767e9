/**
 * Checkpoints of the embedded store's write-ahead log, on a thread of their own.
 *
 * A commit in WAL mode appends the pages it changed to the log; a checkpoint copies
 * them back into the database file and syncs both. By default the connection that
 * commits runs the checkpoint itself, inside the commit that crossed the threshold:
 * on the store's single connection that is the thread serving every request, which
 * then waits for the copy and two `fsync`s. Here a worker thread with its own
 * connection runs a passive checkpoint every {@link CHECKPOINT_EVERY_MILLIS} (a
 * passive checkpoint never waits for, nor blocks, a reader or a writer), and the
 * store's connection checkpoints by itself only when the log still grows past
 * {@link FALLBACK_PAGES}: if the worker falls behind, or cannot run at all, the log
 * stays bounded as before. Durability is unchanged: it depends on the commits'
 * `synchronous` level, not on who checkpoints.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"
import type Database from "better-sqlite3"

/** How often the worker copies the log into the database file. @since 0.1.0 */
export const CHECKPOINT_EVERY_MILLIS = 200

/** Pages of log past which the store's connection checkpoints by itself (about 40 MB). @since 0.1.0 */
export const FALLBACK_PAGES = 10_000

/** SQLite's own threshold, restored when the worker cannot run. */
const DEFAULT_PAGES = 1_000

/** How long closing waits for the worker to close its connection before stopping it. */
const CLOSE_WAIT_MILLIS = 2_000

// CommonJS, run by the worker as a script: better-sqlite3 is loaded from the path this
// module resolved, so the worker needs no module resolution of its own.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.filename, { fileMustExist: true })
const checkpoint = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)")
  } catch {
    // A failed checkpoint leaves the log as it was: the next one, or the store's own, copies it.
  }
}
const timer = setInterval(checkpoint, workerData.every)
parentPort.once("message", () => {
  clearInterval(timer)
  db.close()
  parentPort.close()
})
`

/**
 * Starts checkpointing `db` (opened on `filename`, in WAL mode) from a worker thread;
 * returns how to stop it, or `undefined` when the database has no log to checkpoint
 * (`:memory:`, or WAL mode refused) or the worker cannot be made. Stop it before
 * closing `db`.
 *
 * @example
 * import Database from "better-sqlite3"
 * import * as SqliteCheckpointer from "./SqliteCheckpointer.js"
 *
 * const db = new Database("budget.db")
 * db.pragma("journal_mode = WAL")
 * const stop = SqliteCheckpointer.start(db, "budget.db")
 * // ... use db ...
 * await stop?.()
 * db.close()
 * @since 0.1.0
 */
export const start = (db: Database.Database, filename: string): (() => Promise<void>) | undefined => {
  if (filename === "" || filename === ":memory:" || filename.startsWith("file:")) return undefined
  if (db.pragma("journal_mode", { simple: true }) !== "wal") return undefined
  let worker: Worker
  try {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve("better-sqlite3"),
        filename,
        every: CHECKPOINT_EVERY_MILLIS
      }
    })
  } catch {
    return undefined
  }
  // The worker never keeps the process alive; the store closes it with its connection.
  worker.unref()
  let exited = false
  const exit = new Promise<void>((resolve) => {
    worker.once("exit", () => {
      exited = true
      resolve()
    })
  })
  db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`)
  // A worker that could not open the file, or died: the connection checkpoints as it would without one.
  worker.on("error", () => {
    if (db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_PAGES}`)
  })
  return async () => {
    if (exited) return
    worker.postMessage("close")
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_WAIT_MILLIS)
    })
    await Promise.race([exit, late])
    clearTimeout(timer)
    if (!exited) await worker.terminate()
  }
}
