/**
 * The CPU time a process has used so far, all its threads, read from `/proc` (Linux):
 * per-request CPU depends little on how much of the machine other processes take at
 * that moment, unlike requests per second.
 */
import { readFileSync } from "node:fs"

/** Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100

/** Milliseconds of CPU (user + system) used by `pid` so far, or undefined where `/proc` is not. */
export const cpuMillis = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    const user = Number(fields[11])
    const system = Number(fields[12])
    return Number.isFinite(user + system) ? ((user + system) * 1000) / TICKS_PER_SECOND : undefined
  } catch {
    return undefined
  }
}
