/**
 * The PostgreSQL store beyond the conformance suite: two connection pools racing on
 * one team budget, rows corrupted behind its back, exact int8 money, migrations, one
 * round trip per ledger step, the database unreachable mid-run (through a proxy that
 * is cut and restored; the shared server is never stopped), and key-cache invalidation
 * across instances through LISTEN/NOTIFY.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { expect, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Redacted,
  Tracer
} from "effect"
import {
  type Ids,
  Invalidation,
  KeyAuth,
  KeyRepo,
  Money,
  SpendLedger,
  SpendLogRepo,
  SqlStore,
  type StoreServices,
  TeamRepo,
  toHttpError
} from "../src/index.js"
import { conflictRetries } from "../src/store/sql/SqlErrors.js"
import { failure, hold, holdRequest, logDraft, makeWorld, settle, spendOf } from "./conformance/fixtures.js"
import { limits, teamId, usd } from "./support/fixtures.js"
import { describePg, PG_HOST, PG_PORT, pgUrl, schemaIn, useDatabase } from "./support/postgres.js"
import {
  bigMoney,
  concurrentAuthorizeSettle,
  concurrentTeamBudget,
  corruptRows,
  makeTeamOf,
  migrateTwice,
  policyOver,
  refusalMakesNoCounter
} from "./support/sqlScenarios.js"
import { startProxy } from "./support/tcpProxy.js"

describePg("PostgreSQL store", () => {
  const database = useDatabase()

  /** A store over a pool of its own on `url`, with that pool's client for raw SQL. */
  const storeOn = (url: string, options: SqlStore.SqlStoreOptions & { maxConnections?: number } = {}) =>
    Layer.build(
      SqlStore.layer(options).pipe(
        Layer.provideMerge(
          SqlStore.pgClient({ url: Redacted.make(url), maxConnections: options.maxConnections ?? 8 })
        )
      )
    )

  it.scoped("400 concurrent hold+settle through two pools against a budget that fits 25: 25 admitted", () =>
    Effect.gen(function* () {
      const url = pgUrl(database.name, yield* schemaIn(database.name))
      const first = yield* storeOn(url)
      const second = yield* storeOn(url)
      const retriesBefore = (yield* Metric.value(conflictRetries)).count
      yield* concurrentTeamBudget([first, second], 400)
      // No step was ever aborted for a deadlock (and so none had to be run again).
      expect((yield* Metric.value(conflictRetries)).count).toBe(retriesBefore)
    })
  )

  it.scoped(
    "400 concurrent authorize+settle through two pools against a team budget that fits 25: 25 admitted",
    () =>
      Effect.gen(function* () {
        const url = Redacted.make(pgUrl(database.name, yield* schemaIn(database.name)))
        // Two instances: each its own pool, store, key cache and policy.
        const instance = () =>
          Layer.build(
            policyOver(SqlStore.layer()).pipe(
              Layer.provideMerge(SqlStore.pgClient({ url, maxConnections: 8 }))
            )
          )
        const first = yield* instance()
        const second = yield* instance()
        yield* concurrentAuthorizeSettle([first, second], 400)
      })
  )

  it.scoped("a corrupt row fails only its owner's requests, with CorruptRecord", () =>
    Effect.gen(function* () {
      const url = Redacted.make(pgUrl(database.name, yield* schemaIn(database.name)))
      const client = SqlStore.pgClient({ url, maxConnections: 4 })
      const services = yield* Layer.build(policyOver(SqlStore.layer()).pipe(Layer.provideMerge(client)))
      yield* Effect.flatMap(SqlClient.SqlClient, corruptRows).pipe(Effect.provide(services))
    })
  )

  it.scoped("money beyond 2^53 nano-dollars round-trips exactly", () =>
    Effect.gen(function* () {
      const store = yield* storeOn(pgUrl(database.name, yield* schemaIn(database.name)))
      yield* Effect.provide(bigMoney, store)
    })
  )

  it.scoped("a refused hold writes nothing, not even a counter of a scope never seen", () =>
    Effect.gen(function* () {
      const store = yield* storeOn(pgUrl(database.name, yield* schemaIn(database.name)))
      yield* Effect.flatMap(SqlClient.SqlClient, refusalMakesNoCounter).pipe(Effect.provide(store))
    })
  )

  it.scoped("migrations run twice apply nothing the second time", () =>
    Effect.gen(function* () {
      const store = yield* storeOn(pgUrl(database.name, yield* schemaIn(database.name)))
      yield* Effect.flatMap(SqlClient.SqlClient, migrateTwice).pipe(Effect.provide(store))
    })
  )

  it.scoped("a failing migration is a StoreUnavailable naming it, and nothing of it is kept", () =>
    Effect.gen(function* () {
      const url = Redacted.make(pgUrl(database.name, yield* schemaIn(database.name)))
      const client = yield* Layer.build(SqlStore.pgClient({ url, maxConnections: 2 }))
      const raw = Context.get(client, SqlClient.SqlClient)
      yield* raw`CREATE VIEW tb_keys AS SELECT 1 AS team_id, 1 AS user_id`
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(SqlStore.layer().pipe(Layer.provide(Layer.succeedContext(client)))))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const text = JSON.stringify(exit)
      expect(text).toContain("StoreUnavailable")
      expect(text).toContain("1_initial")
      const tables =
        yield* raw`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'tb_teams'`
      expect(tables).toEqual([])
    })
  )

  it.scoped("a steady-state request costs two round trips: one hold, one settle", () =>
    Effect.gen(function* () {
      const store = yield* storeOn(pgUrl(database.name, yield* schemaIn(database.name)))
      const counts = { statements: 0, transactions: 0 }
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          if (name === "sql.execute") counts.statements++
          if (name === "sql.transaction") counts.transactions++
          return new NoopSpan(name, parent, context, links, startTime, kind)
        },
        context: (f) => f()
      })
      yield* Effect.gen(function* () {
        const world = yield* makeWorld({
          team: limits({ maxBudget: 1000 }),
          member: limits({ maxBudget: 500 })
        })
        // The first request makes the counters that do not exist yet (here: the global scope).
        yield* settle(world, yield* hold(world.scopes, usd(1)), usd(0.5))
        const measured = Effect.gen(function* () {
          for (let i = 0; i < 20; i++) yield* settle(world, yield* hold(world.scopes, usd(1)), usd(0.5))
        })
        yield* Effect.withTracer(measured, tracer)
        expect(counts).toEqual({ statements: 40, transactions: 0 })
        expect((yield* spendOf(world.team)).total).toBe(usd(10.5))
      }).pipe(Effect.provide(store))
    })
  )

  it.scopedLive(
    "the database unreachable mid-run: StoreUnavailable while cut, working again after, no hold left behind",
    () =>
      Effect.gen(function* () {
        const schema = yield* schemaIn(database.name)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => startProxy(PG_HOST, PG_PORT)),
          (p) => Effect.promise(() => p.close())
        )
        const client = SqlStore.pgClient({
          url: Redacted.make(pgUrl(database.name, schema, proxy.port)),
          maxConnections: 4,
          connectTimeout: Duration.seconds(2)
        })
        const store = yield* Layer.build(
          SqlStore.layer({ holdTtl: "2 seconds", timeout: "3 seconds" }).pipe(Layer.provide(client))
        )
        yield* Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 100 }) })
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))
          const inFlight = yield* hold(world.scopes, usd(2))

          proxy.cut()
          const started = Date.now()
          const errors = [
            yield* failure(
              Effect.flatMap(SpendLedger, (l) => l.hold(holdRequest(world.scopes, usd(1)))),
              "StoreUnavailable"
            ),
            yield* failure(
              Effect.flatMap(SpendLedger, (l) =>
                l.settle(inFlight, usd(2), logDraft(world, inFlight, inFlight.expiresAt))
              ),
              "StoreUnavailable"
            ),
            yield* failure(
              Effect.flatMap(SpendLedger, (l) => l.spendOf(world.team)),
              "StoreUnavailable"
            ),
            yield* failure(
              Effect.flatMap(TeamRepo, (teams) => teams.find(teamId("eng"))),
              "StoreUnavailable"
            )
          ]
          for (const error of errors) expect(toHttpError(error).status).toBe(503)
          expect(Date.now() - started).toBeLessThan(10_000)

          proxy.restore()
          // The pool reconnects by itself: the next request works, the hold made before the cut settles.
          yield* settle(world, inFlight, usd(2))
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))
          expect((yield* spendOf(world.team)).total).toBe(usd(4))

          // Cut again while 40 requests are in flight: they hold, and their settles come during the cut.
          const attempts = Array.from({ length: 40 }, () =>
            Effect.gen(function* () {
              const held = yield* hold(world.scopes, usd(0.5))
              yield* Effect.sleep("150 millis")
              yield* settle(world, held, usd(0.5))
            }).pipe(Effect.either)
          )
          const running = yield* Effect.fork(Effect.all(attempts, { concurrency: "unbounded" }))
          yield* Effect.sleep("60 millis")
          proxy.cut()
          yield* Effect.sleep("400 millis")
          proxy.restore()
          const results = yield* running.await.pipe(Effect.flatMap((exit) => exit))
          for (const result of results) {
            if (Either.isLeft(result)) expect(result.left._tag).toBe("StoreUnavailable")
          }
          expect(results.some(Either.isLeft)).toBe(true)

          // What the outage left held expires with its TTL and comes back.
          yield* Effect.sleep("2100 millis")
          yield* Effect.flatMap(SpendLedger, (ledger) => ledger.reclaimExpired())
          for (const scope of world.scopes) expect((yield* spendOf(scope)).held).toBe(0n)
          const direct = SqlStore.pgClient({
            url: Redacted.make(pgUrl(database.name, schema)),
            maxConnections: 1
          })
          const open = yield* SqlClient.SqlClient.pipe(
            Effect.flatMap(
              (sql) => sql<{ readonly n: unknown }>`SELECT count(*) AS n FROM tb_holds WHERE state = 'open'`
            ),
            Effect.provide(direct)
          )
          expect(open.map((row) => Number(row.n))).toEqual([0])
          const logs = yield* Effect.flatMap(SpendLogRepo, (repo) => repo.query({ limit: 10_000 }))
          const logged = logs.reduce((sum, row) => Money.add(sum, row.cost), Money.zero)
          expect((yield* spendOf(world.team)).total).toBe(logged)
        }).pipe(Effect.provide(store))
      }),
    30_000
  )

  it.scopedLive(
    "steps stuck behind a locked counter, alone or queued for a batch, fail with StoreUnavailable at their timeout",
    () =>
      Effect.gen(function* () {
        const schema = yield* schemaIn(database.name)
        const url = Redacted.make(pgUrl(database.name, schema))
        const store = yield* Layer.build(
          SqlStore.layer({ timeout: "300 millis" }).pipe(
            Layer.provide(SqlStore.pgClient({ url, maxConnections: 4 }))
          )
        )
        yield* Effect.gen(function* () {
          const world = yield* makeWorld({ team: limits({ maxBudget: 100 }) })
          yield* settle(world, yield* hold(world.scopes, usd(1)), usd(1))
          // Another connection locks the team's counter and keeps it until told to let go.
          const locked = yield* Deferred.make<void>()
          const letGo = yield* Deferred.make<void>()
          const locker = yield* SqlClient.SqlClient.pipe(
            Effect.flatMap((sql) =>
              sql.withTransaction(
                Effect.zipRight(
                  sql`SELECT total FROM tb_counters WHERE scope_key = 'team:eng' FOR UPDATE`,
                  Effect.zipRight(Deferred.succeed(locked, undefined), Deferred.await(letGo))
                )
              )
            ),
            Effect.provide(SqlStore.pgClient({ url, maxConnections: 1 })),
            Effect.fork
          )
          yield* Deferred.await(locked)
          const errors = yield* Effect.all(
            Array.from({ length: 6 }, () =>
              failure(
                Effect.flatMap(SpendLedger, (l) => l.hold(holdRequest(world.scopes, usd(1)))),
                "StoreUnavailable"
              )
            ),
            { concurrency: "unbounded" }
          )
          for (const error of errors) expect(error.operation).toMatch(/timed out/)
          yield* Deferred.succeed(letGo, undefined)
          yield* Fiber.join(locker)
          // Once the lock is gone the store answers again.
          yield* settle(world, yield* hold(world.scopes, usd(2)), usd(2))
          const team = yield* spendOf(world.team)
          expect(team.total >= usd(3)).toBe(true)
        }).pipe(Effect.provide(store))
      }),
    30_000
  )

  it.scopedLive(
    "an admin write on one instance reaches the key cache of another within a second",
    () =>
      Effect.gen(function* () {
        const schema = yield* schemaIn(database.name)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => startProxy(PG_HOST, PG_PORT)),
          (p) => Effect.promise(() => p.close())
        )
        const instance = (port: number) =>
          Layer.build(
            KeyAuth.layer().pipe(
              Layer.provideMerge(
                SqlStore.layerPg({
                  url: Redacted.make(pgUrl(database.name, schema, port)),
                  maxConnections: 2,
                  heartbeat: "200 millis",
                  connectTimeout: Duration.seconds(1)
                })
              )
            )
          )
        const a = yield* instance(PG_PORT)
        // The second instance reaches the database through the proxy, to be cut later.
        const b = yield* instance(proxy.port)
        const members = yield* Effect.provide(makeTeamOf(["ann", "ben"], limits({ maxBudget: 10 })), a)
        const [ann, ben] = members
        if (ann === undefined || ben === undefined) return yield* Effect.dieMessage("no members")
        const authOn = (ctx: Context.Context<KeyAuth.KeyAuth>, token: string) =>
          Effect.flatMap(KeyAuth.KeyAuth, (auth) => auth.authenticate(token)).pipe(Effect.provide(ctx))
        const blockOn = (
          ctx: Context.Context<StoreServices | Invalidation.Invalidation>,
          hash: Ids.KeyHash
        ) =>
          Effect.gen(function* () {
            yield* Effect.flatMap(KeyRepo, (keys) => keys.update(hash, { blocked: true }))
            yield* Effect.flatMap(Invalidation.Invalidation, (i) => i.publish)
          }).pipe(Effect.provide(ctx))
        /** Polls until the key is refused on `b`; returns how long that took. */
        const refusedWithin = (token: string) =>
          Effect.gen(function* () {
            const started = Date.now()
            for (;;) {
              const result = yield* Effect.either(authOn(b, token))
              if (Either.isLeft(result)) {
                expect(result.left._tag).toBe("Blocked")
                return Date.now() - started
              }
              if (Date.now() - started > 5_000) return Number.POSITIVE_INFINITY
              yield* Effect.sleep("20 millis")
            }
          })

        yield* Effect.sleep("1 second") // both listeners up
        yield* authOn(b, ann.token) // cached on b
        yield* blockOn(a, ann.world.keyHash)
        expect(yield* refusedWithin(ann.token)).toBeLessThan(1_000)

        // b's listening connection dies with the outage and comes back by itself.
        yield* authOn(b, ben.token)
        proxy.cut()
        yield* Effect.sleep("500 millis")
        proxy.restore()
        yield* Effect.sleep("2 seconds")
        yield* blockOn(a, ben.world.keyHash)
        expect(yield* refusedWithin(ben.token)).toBeLessThan(1_000)
      }),
    30_000
  )
})

class NoopSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = "span"
  readonly traceId = "trace"
  readonly sampled = true
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    readonly links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Started")
      this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(): void {}
  addLinks(): void {}
}
