#!/usr/bin/env node
// @ts-check
/**
 * Runs one of this repository's TypeScript entry points (`npm start`, `npm run bench`)
 * as a single esbuild bundle of it and the SDK sources it imports, in this process.
 *
 *   node scripts/run.mjs examples/proxy/main.ts --config config.yaml
 *
 * Why not `node --import tsx`: tsx compiles every module with esbuild's `keepNames`,
 * which wraps each function expression in a naming call that runs again every time a
 * closure is made. On the proxy's request path that cost about 15% of its CPU per
 * request, and module-per-file loading about 5% more, so the proxy and the benchmarks
 * would measure the loader rather than the SDK. A bundle runs the code as a build of
 * the package would. Packages stay external and load from `node_modules` as usual.
 *
 * Each module's `import.meta.url` is its own source file's URL, and `process.argv[1]`
 * the entry file, so every module sees its paths and arguments as if run from source.
 * The bundle is written under `node_modules/.cache/teambudget/`, named by its content
 * and written atomically, so processes started at the same time share it safely.
 */
import { createHash } from "node:crypto"
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { basename, extname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { build } from "esbuild"

const [entryArgument, ...rest] = process.argv.slice(2)
if (entryArgument === undefined) {
  process.stderr.write("usage: node scripts/run.mjs ENTRY.ts [arguments...]\n")
  process.exit(2)
}
const entry = resolve(entryArgument)

/**
 * Gives each source module its own `import.meta.url`, which a bundle would otherwise make the bundle's.
 *
 * @type {import("esbuild").Plugin}
 */
const ownImportMetaUrl = {
  name: "own-import-meta-url",
  setup(context) {
    context.onLoad({ filter: /\.[cm]?ts$/ }, (args) => ({
      contents: readFileSync(args.path, "utf8").replace(
        /\bimport\.meta\.url\b/g,
        JSON.stringify(pathToFileURL(args.path).href)
      ),
      loader: "ts"
    }))
  }
}

const result = await build({
  entryPoints: [entry],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  plugins: [ownImportMetaUrl],
  write: false,
  logLevel: "warning"
})
const code = result.outputFiles[0]?.contents
if (code === undefined) throw new Error(`esbuild produced no output for ${entryArgument}`)

// Beside the project's own node_modules, so the bundle's package imports resolve as the sources' do.
const cache = fileURLToPath(new URL("../node_modules/.cache/teambudget/", import.meta.url))
const digest = createHash("sha256").update(code).digest("hex").slice(0, 16)
const name = basename(entry, extname(entry))
const bundle = join(cache, `${name}-${digest}.mjs`)
/** A bundle of this entry not used for a day is from sources long changed: it is removed. */
const STALE_MS = 24 * 60 * 60 * 1000

if (existsSync(bundle)) {
  // Used now: not stale for another day.
  const now = new Date()
  utimesSync(bundle, now, now)
} else {
  mkdirSync(cache, { recursive: true })
  const partial = `${bundle}.${process.pid}.tmp`
  writeFileSync(partial, code)
  renameSync(partial, bundle)
  // Each change to the sources makes a new bundle: without this the cache would only grow.
  for (const file of readdirSync(cache)) {
    const path = join(cache, file)
    if (path === bundle || !file.startsWith(`${name}-`)) continue
    const stat = statSync(path, { throwIfNoEntry: false })
    if (stat !== undefined && Date.now() - stat.mtimeMs > STALE_MS) rmSync(path, { force: true })
  }
}
process.argv = [process.argv[0] ?? process.execPath, entry, ...rest]
await import(pathToFileURL(bundle).href)
