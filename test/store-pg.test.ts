import { vi } from "@effect/vitest"
import { runStoreConformance } from "./conformance/storeSuite.js"
import { describePg, freshPgStore, useDatabase } from "./support/postgres.js"

// Every ledger step is a round trip to a server that serialises steps on shared
// counters; the 10,000-settle test needs more than the default 30 seconds on a busy host.
vi.setConfig({ testTimeout: 120_000 })

describePg("PostgreSQL store", () => {
  const database = useDatabase()
  runStoreConformance("conformance", () => freshPgStore(database.name))
})
