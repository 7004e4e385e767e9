import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // Examples import the package by its name, as users do; in this repository that is the source.
    alias: [
      { find: /^teambudget$/, replacement: source("./src/index.ts") },
      { find: /^teambudget\/promise$/, replacement: source("./src/promise.ts") },
      { find: /^teambudget\/(hono|express|fastify)$/, replacement: source("./src/adapters/$1.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
