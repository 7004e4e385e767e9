import { SqlStore } from "../src/index.js"
import { runStoreConformance } from "./conformance/storeSuite.js"

runStoreConformance("SQLite store", () => SqlStore.layerSqlite({ filename: ":memory:" }))
