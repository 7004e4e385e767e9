/**
 * The store conformance suite: the same tests for every store. Each test runs on a
 * fresh store built by `makeLayer`, which must use the default hold TTL (15 minutes).
 * The tests reach the store through its ports only.
 */
import { describe } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import type { StoreServices } from "../../src/index.js"
import { concurrencyTests } from "./concurrency.js"
import type { Run } from "./fixtures.js"
import { ledgerTests } from "./ledger.js"
import { membershipTests } from "./memberships.js"
import { repoTests } from "./repos.js"
import { windowTests } from "./windows.js"

export const runStoreConformance = (
  name: string,
  makeLayer: () => Layer.Layer<StoreServices, unknown>
): void => {
  const run: Run = (effect) => Effect.provide(effect, makeLayer())
  describe(name, () => {
    repoTests(run)
    membershipTests(run)
    ledgerTests(run)
    windowTests(run)
    concurrencyTests(run)
  })
}
