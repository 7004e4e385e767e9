/** The proxy example end to end over the memory store (`DATABASE_URL=memory:`). */
import { describe } from "@effect/vitest"
import { runScenarios } from "./proxyScenarios.js"

describe("proxy example over the memory store", () => {
  runScenarios("memory", () => "memory:")
})
