/**
 * The embedded store's write-ahead log is copied into the database file by a worker
 * thread, not by the commits of the store's own connection, and the log is gone once
 * the store closes.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as SqliteCheckpointer from "../src/store/sql/SqliteCheckpointer.js"
import * as SqliteConnection from "../src/store/sql/SqliteConnection.js"

describe("SQLite checkpoints", () => {
  it.live("a worker copies the log into the database file; closing removes the log", () =>
    Effect.acquireUseRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "teambudget-checkpoint-"))),
      (dir) =>
        Effect.gen(function* () {
          const filename = join(dir, "store.db")
          yield* Effect.scoped(
            Effect.gen(function* () {
              const { db } = yield* SqliteConnection.make({ filename })
              expect(db.pragma("wal_autocheckpoint", { simple: true })).toBe(
                SqliteCheckpointer.FALLBACK_PAGES
              )
              db.exec("CREATE TABLE t (x BLOB)")
              const insert = db.prepare("INSERT INTO t VALUES (randomblob(3000))")
              // About 2,000 pages: under the connection's own threshold, so only the worker copies them.
              const write = db.transaction(() => {
                for (let i = 0; i < 200; i++) insert.run()
              })
              for (let i = 0; i < 10; i++) write()
              const before = statSync(filename).size
              let after = before
              for (let waited = 0; waited < 5_000 && after < 5_000_000; waited += 50) {
                yield* Effect.sleep("50 millis")
                after = statSync(filename).size
              }
              expect(before).toBeLessThan(1_000_000)
              expect(after).toBeGreaterThan(5_000_000)
            }).pipe(Effect.provide(Reactivity.layer))
          )
          expect(existsSync(`${filename}-wal`)).toBe(false)
        }),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
  )

  it.live("an in-memory database has no log and no worker", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { db } = yield* SqliteConnection.make({ filename: ":memory:" })
        expect(SqliteCheckpointer.start(db, ":memory:")).toBeUndefined()
      }).pipe(Effect.provide(Reactivity.layer))
    )
  )
})
