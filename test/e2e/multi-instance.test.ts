/**
 * Three proxy processes on one PostgreSQL database, driven together: every call may
 * land on any instance, and the budgets they share must hold as if there were one.
 * Afterwards the database is read with raw SQL and reconciled with what the clients
 * saw: counters equal the spend log, no budget is exceeded, every answered call has
 * exactly one spend log row, and no hold is left open.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { describePg, pgUrl, useDatabase } from "../support/postgres.js"
import * as Cluster from "../support/proxyCluster.js"

const INSTANCES = 3
const CALLS_PER_TEAM = 100
const TEAMS = [
  { id: "alpha", fits: 30 },
  { id: "beta", fits: 45 },
  { id: "gamma", fits: 20 }
] as const

describePg("three proxy instances on one PostgreSQL database", () => {
  const database = useDatabase()
  let cluster: Cluster.Cluster | undefined
  const running = (): Cluster.Cluster => {
    if (cluster === undefined) throw new Error("the cluster did not start")
    return cluster
  }

  beforeAll(async () => {
    cluster = await Cluster.start({ instances: INSTANCES, databaseUrl: pgUrl(database.name) })
  }, 90_000)
  afterAll(() => cluster?.stop())

  it("300 concurrent calls over three instances against three team budgets: exact admissions, one charge each", async () => {
    const { admin, generate, chat, upstream, proxies } = running()
    const plain = Cluster.chatBody("Hello there, how are you today?", 100)
    const streamed = Cluster.chatBody("Hello there, how are you today?", 100, true)
    // Streamed and plain calls hold the same, so a budget fits a whole number of either.
    expect(streamed.tokens).toBe(plain.tokens)
    const perCall = BigInt(plain.tokens) * Cluster.NANOS_PER_TOKEN

    const keys = new Map<string, ReadonlyArray<string>>()
    for (const [i, team] of TEAMS.entries()) {
      const budget = (team.fits * plain.tokens * Cluster.PRICE).toFixed(9)
      const made = await admin(
        "/team/new",
        { team_id: team.id, team_alias: team.id, max_budget: Number(budget) },
        i
      )
      expect(made.status, made.text).toBe(200)
      // Two keys per team, made through different instances: each instance learns the others' keys from the database.
      keys.set(team.id, [
        await generate({ team_id: team.id }, i),
        await generate({ team_id: team.id }, i + 1)
      ])
    }

    const calls = TEAMS.flatMap((team) =>
      Array.from({ length: CALLS_PER_TEAM }, (_, n) => ({ team: team.id, n }))
    ).map(({ team, n }, i) => {
      const key = keys.get(team)?.[n % 2] ?? ""
      const call = n % 4 === 0 ? streamed : plain
      return chat(i % INSTANCES, key, call.body, call.exactUsage).then((answer) => ({
        team,
        answer,
        instance: i % INSTANCES
      }))
    })
    const answers = await Promise.all(calls)

    for (const team of TEAMS) {
      const mine = answers.filter((a) => a.team === team.id)
      expect(
        mine.filter((a) => a.answer.status === 200),
        team.id
      ).toHaveLength(team.fits)
      const refused = mine.filter((a) => a.answer.status === 402)
      expect(refused, team.id).toHaveLength(CALLS_PER_TEAM - team.fits)
      for (const { answer } of refused) {
        expect(Cluster.at(answer.json, "error", "code")).toBe("team_budget_exceeded")
      }
    }
    // Every instance admitted some of them.
    for (let instance = 0; instance < INSTANCES; instance++) {
      expect(answers.some((a) => a.instance === instance && a.answer.status === 200)).toBe(true)
    }

    // A stream is settled when it ends, just after its last bytes reach the client.
    await expect.poll(async () => (await Cluster.readLedger(pgUrl(database.name))).openHolds).toBe(0)
    const ledger = await Cluster.readLedger(pgUrl(database.name))
    const admitted = answers.filter((a) => a.answer.status === 200).length
    for (const team of TEAMS) {
      const row = ledger.teams.get(team.id)
      expect(row, team.id).toBeDefined()
      if (row === undefined) continue
      expect(row.total, team.id).toBe(row.logged)
      expect(row.total, team.id).toBe(BigInt(team.fits) * perCall)
      expect(row.total <= (row.maxBudget ?? 0n), team.id).toBe(true)
      expect(row.rows, team.id).toBe(team.fits)
      expect(row.held, team.id).toBe(0n)
    }
    // One spend log row per answered call, each request id once, and the upstream was
    // called exactly once for each of them.
    expect(ledger.requestIds.size).toBe(admitted)
    expect([...ledger.requestIds.values()].every((n) => n === 1)).toBe(true)
    expect(upstream.received).toHaveLength(admitted)
    expect(ledger.heldAnywhere).toBe(0n)
    expect(ledger.keyMismatches).toBe(0)
    // Each instance logged the calls it answered.
    const logged = proxies.reduce(
      (sum, p) => sum + p.requests().filter((r) => r["status"] === 200 && r["model"] === "gpt-test").length,
      0
    )
    expect(logged).toBe(admitted)
  })
})
