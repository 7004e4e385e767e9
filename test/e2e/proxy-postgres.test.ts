/**
 * The proxy example end to end over PostgreSQL, in a fresh database. Skipped with a
 * printed reason when the server is not reachable, except on CI.
 */
import { describePg, pgUrl, useDatabase } from "../support/postgres.js"
import { runScenarios } from "./proxyScenarios.js"

describePg("proxy example over PostgreSQL", () => {
  const database = useDatabase()
  runScenarios("postgres", () => pgUrl(database.name))
})
