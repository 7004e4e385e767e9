/** The proxy example end to end over the embedded SQLite store, in its working directory. */
import { describe } from "@effect/vitest"
import { runScenarios } from "./proxyScenarios.js"

describe("proxy example over SQLite", () => {
  runScenarios("sqlite", () => "sqlite:.teambudget/e2e.db")
})
