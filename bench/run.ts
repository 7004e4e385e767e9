/**
 * `npm run bench`: every benchmark of the project, one after the other, in one
 * process, printed as Markdown. Figures are ratios measured in the same run: the
 * machines are shared and noisy, so absolute numbers vary between runs.
 */
import { cpus } from "node:os"
import { run as core } from "./core.js"
import { run as estimate } from "./estimate.js"
import { run as http } from "./http.js"
import { run as proxy } from "./proxy.js"
import { run as ratelimit } from "./ratelimit.js"
import { run as scaling } from "./scaling.js"
import { run as storeSql } from "./store-sql.js"

const sections: ReadonlyArray<{ name: string; run: () => Promise<string> }> = [
  { name: "core", run: core },
  { name: "estimate", run: estimate },
  { name: "http", run: http },
  { name: "sql", run: storeSql },
  { name: "proxy", run: proxy },
  { name: "ratelimit", run: ratelimit },
  { name: "scaling", run: scaling }
]

const only = process.argv.slice(2)
console.log(
  `# teambudget benchmarks\n\nNode ${process.version}, ${cpus().length} CPU(s): ${cpus()[0]?.model ?? "unknown"}\n`
)
for (const section of sections) {
  if (only.length > 0 && !only.includes(section.name)) continue
  console.log(await section.run())
}
