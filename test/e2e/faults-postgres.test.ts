/**
 * Faults under load, with proxy processes on one PostgreSQL database:
 * - the database cut away (a TCP proxy between the proxies and the shared server is
 *   cut and restored; the server itself is never touched): calls fail closed with
 *   the SPEC 9 503 while it is gone, succeed again after, and once the hold TTL has
 *   passed no hold is left and every counter equals its spend log;
 * - a proxy process killed with SIGKILL in the middle of streams: its holds expire
 *   after the TTL, so another instance sees the budget whole again, and what was
 *   settled before stays settled.
 * The hold TTL is a few seconds here (`hold_ttl_seconds`), so these waits are real.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { describePg, PG_HOST, PG_PORT, pgUrl, useDatabase } from "../support/postgres.js"
import * as Cluster from "../support/proxyCluster.js"
import { startProxy, type TcpProxy } from "../support/tcpProxy.js"

const HOLD_TTL_SECONDS = 3
// Longer where a check must come before the TTL runs out, on a machine that may be busy.
const CRASH_HOLD_TTL_SECONDS = 6
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const until = async (ready: () => boolean) => {
  while (!ready()) await sleep(50)
}

interface Sample {
  readonly startedAt: number
  readonly endedAt: number
  readonly answer: Cluster.Reply
}

/** `workers` loops calling `call` until `stop()`; every answer is kept with its times. */
const load = (workers: number, call: (worker: number, n: number) => Promise<Cluster.Reply>) => {
  const samples: Array<Sample> = []
  let running = true
  const loops = Array.from({ length: workers }, async (_, worker) => {
    for (let n = 0; running; n++) {
      const startedAt = performance.now()
      const answer = await call(worker, n)
      samples.push({ startedAt, endedAt: performance.now(), answer })
      // A refused connection answers at once: do not spin.
      if (answer.status !== 200) await sleep(10)
    }
  })
  return {
    samples,
    stop: async () => {
      running = false
      await Promise.all(loops)
    }
  }
}

describePg("PostgreSQL cut away under load", () => {
  const database = useDatabase()
  let tcp: TcpProxy | undefined
  let cluster: Cluster.Cluster | undefined

  beforeAll(async () => {
    tcp = await startProxy(PG_HOST, PG_PORT)
    cluster = await Cluster.start({
      instances: 2,
      databaseUrl: pgUrl(database.name, undefined, tcp.port),
      holdTtlSeconds: HOLD_TTL_SECONDS
    })
  }, 90_000)
  afterAll(async () => {
    await cluster?.stop()
    await tcp?.close()
  })

  it("503 while the database is gone, 200 after; then no hold left and counters equal the spend log", async () => {
    if (cluster === undefined || tcp === undefined) throw new Error("not started")
    const { admin, generate, chat } = cluster
    const link = tcp
    expect((await admin("/team/new", { team_id: "ops", team_alias: "ops", max_budget: 1000 })).status).toBe(
      200
    )
    const keys = [await generate({ team_id: "ops" }, 0), await generate({ team_id: "ops" }, 1)]
    const plain = Cluster.chatBody("Status report, please.", 50)
    const streamed = Cluster.chatBody("Status report, please.", 50, true)
    // Streams of about 100 ms: some are always between their hold and their settlement.
    const slow = { ...streamed.exactUsage, "x-fake-chunks": "5", "x-fake-delay-ms": "20" }
    // Warm both instances' key caches, so the outage is met by the ledger, not by a lookup.
    for (let i = 0; i < 4; i++) expect((await chat(i, keys[i % 2] ?? "", plain.body)).status).toBe(200)

    const traffic = load(12, (worker, n) =>
      n % 3 === 0
        ? chat(worker, keys[worker % 2] ?? "", streamed.body, slow)
        : chat(worker, keys[worker % 2] ?? "", plain.body, plain.exactUsage)
    )
    // Each phase lasts until it has enough answers, however busy the machine is.
    const seen = (which: (s: Sample) => boolean) => () => traffic.samples.filter(which).length >= 20
    await until(seen((s) => s.answer.status === 200))
    const cutAt = performance.now()
    link.cut()
    await sleep(1_000)
    await until(seen((s) => s.startedAt > cutAt))
    const restoredAt = performance.now()
    link.restore()
    // The pools find their broken connections on first use; a second later all is well.
    await until(seen((s) => s.startedAt > restoredAt + 1_000))
    await traffic.stop()

    const samples = traffic.samples
    const before = samples.filter((s) => s.endedAt < cutAt)
    const during = samples.filter((s) => s.startedAt > cutAt && s.endedAt < restoredAt)
    const after = samples.filter((s) => s.startedAt > restoredAt + 1_000)
    expect(before.every((s) => s.answer.status === 200)).toBe(true)
    expect(during.length).toBeGreaterThanOrEqual(20)
    for (const { answer } of during) expect(Cluster.isStoreUnavailable(answer), answer.text).toBe(true)
    expect(after.length).toBeGreaterThanOrEqual(20)
    expect(after.every((s) => s.answer.status === 200)).toBe(true)
    const statuses = new Set(samples.map((s) => s.answer.status))
    expect([...statuses].every((status) => status === 200 || status === 503)).toBe(true)

    // Holds the outage left open expire with the TTL; the next hold reclaims them.
    await sleep(HOLD_TTL_SECONDS * 1_000 + 200)
    for (let i = 0; i < 2; i++)
      expect((await chat(i, keys[i] ?? "", plain.body, plain.exactUsage)).status).toBe(200)
    const ledger = await Cluster.readLedger(pgUrl(database.name))
    expect(ledger.openHolds).toBe(0)
    expect(ledger.heldAnywhere).toBe(0n)
    const team = ledger.teams.get("ops")
    expect(team?.total).toBe(team?.logged)
    expect(ledger.keyMismatches).toBe(0)
    expect([...ledger.requestIds.values()].every((n) => n === 1)).toBe(true)
    // Every answered call was charged: the 200s (with the warm-up and the two above)
    // and the spend log rows agree.
    const answered = samples.filter((s) => s.answer.status === 200).length + 4 + 2
    expect(team?.rows).toBe(answered)
  }, 60_000)
})

describePg("a proxy killed with SIGKILL during streams", () => {
  const database = useDatabase()
  let cluster: Cluster.Cluster | undefined

  beforeAll(async () => {
    cluster = await Cluster.start({
      instances: 2,
      databaseUrl: pgUrl(database.name),
      holdTtlSeconds: CRASH_HOLD_TTL_SECONDS
    })
  }, 90_000)
  afterAll(() => cluster?.stop())

  it("its holds expire after the TTL and the survivor sees the budget whole; settled spend stays", async () => {
    if (cluster === undefined) throw new Error("not started")
    const { admin, generate, chat, openStream, proxies } = cluster
    const [victim, survivor] = [0, 1]
    const small = Cluster.chatBody("Short one.", 20)
    const big = Cluster.chatBody("A long answer, please.", 400, true)
    const STREAMS = 4
    // Room for the settled calls, the streams' holds, and not quite one more stream.
    const budgetTokens = 3 * small.tokens + STREAMS * big.tokens + big.tokens - 1
    const budget = Number((budgetTokens * Cluster.PRICE).toFixed(9))
    expect(
      (await admin("/team/new", { team_id: "crash", team_alias: "crash", max_budget: budget })).status
    ).toBe(200)
    const key = await generate({ team_id: "crash" })

    for (let i = 0; i < 3; i++) {
      expect((await chat(victim, key, small.body, small.exactUsage)).status).toBe(200)
    }
    const settled = BigInt(3 * small.tokens) * Cluster.NANOS_PER_TOKEN
    const slow = { ...big.exactUsage, "x-fake-chunks": "200", "x-fake-delay-ms": "50" }
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () => openStream(victim, key, big.body, slow))
    )
    for (const stream of streams) expect(stream.status).toBe(200)
    const readers = streams.map((stream) => stream.body?.getReader())
    // Each stream is flowing: its hold is placed and the upstream is answering.
    for (const reader of readers) expect((await reader?.read())?.done).toBe(false)

    const held = await Cluster.readLedger(pgUrl(database.name))
    expect(held.openHolds).toBe(STREAMS)
    expect(held.teams.get("crash")?.held).toBe(BigInt(STREAMS * big.tokens) * Cluster.NANOS_PER_TOKEN)

    proxies[victim]?.kill()
    expect(await proxies[victim]?.exited).toBe("SIGKILL")
    for (const reader of readers)
      await reader?.read().then(
        () => reader.cancel(),
        () => undefined
      )

    // Right after the crash, the dead instance's holds still bind.
    const refused = await chat(survivor, key, big.body, big.exactUsage)
    expect(refused.status).toBe(402)
    expect(Cluster.at(refused.json, "error", "code")).toBe("team_budget_exceeded")

    // After the TTL the survivor reclaims them: the same call passes.
    await expect
      .poll(async () => (await chat(survivor, key, big.body, big.exactUsage)).status, {
        timeout: (CRASH_HOLD_TTL_SECONDS + 5) * 1_000,
        interval: 250
      })
      .toBe(200)
    // That call was a stream: it is settled just after its last bytes.
    await expect.poll(async () => (await Cluster.readLedger(pgUrl(database.name))).openHolds).toBe(0)
    const after = await Cluster.readLedger(pgUrl(database.name))
    const team = after.teams.get("crash")
    expect(after.openHolds).toBe(0)
    expect(team?.held).toBe(0n)
    // What was settled before the crash is still there; the one call after it is added.
    expect(team?.total).toBe(settled + BigInt(big.tokens) * Cluster.NANOS_PER_TOKEN)
    expect(team?.total).toBe(team?.logged)
    expect(team?.rows).toBe(4)
    expect(after.keyMismatches).toBe(0)
  })
})
