import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as Operations from "../../src/api/Operations.js"
import { Admin, KeyAuth, Principal } from "../../src/index.js"
import { addMember, makeKey, makeTeam, makeUser } from "../support/fixtures.js"
import { makeServices } from "../support/runtime.js"

const services = () => Admin.Admin.Default.pipe(Layer.provideMerge(makeServices()))

describe("Operations", () => {
  it("lists every management operation by name", () => {
    expect(Operations.names).toContain("team/new")
    expect(Operations.names).toContain("team/member_update")
    expect(Operations.names).toContain("spend/logs")
    expect(Option.isSome(Operations.find("/key/info"))).toBe(true)
    expect(Option.isNone(Operations.find("team/nothing"))).toBe(true)
  })

  it.effect("invoke decodes LiteLLM's JSON, runs the operation and renders its JSON", () =>
    Effect.gen(function* () {
      const team = yield* Operations.invoke("team/new", Principal.master, {
        team_id: "ops",
        team_alias: "Ops",
        max_budget: 25.5,
        budget_duration: "1mo"
      })
      expect(team).toMatchObject({ team_id: "ops", max_budget: 25.5, budget_duration: "1mo", spend: 0 })
      yield* Operations.invoke("team/member_add", Principal.master, {
        team_id: "ops",
        member: { user_id: "u" }
      })
      const cleared = yield* Operations.invoke("/team/member_update", Principal.master, {
        team_id: "ops",
        user_id: "u",
        max_budget_in_team: null
      })
      expect(cleared).toMatchObject({ litellm_budget_table: null })
      const info = yield* Operations.invoke("team/info", Principal.master, { team_id: "ops" })
      expect(info).toMatchObject({
        team_id: "ops",
        team_memberships: [{ user_id: "u", litellm_budget_table: null }]
      })
    }).pipe(Effect.provide(services()))
  )

  it.effect("invoke refuses bad input, unknown operations and callers without the right", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.flip(
        Operations.invoke("team/new", Principal.master, { team_alias: "x", max_budget: -1 })
      )
      expect(bad).toMatchObject({ _tag: "InvalidRequest", path: "max_budget" })
      const unknown = yield* Effect.flip(Operations.invoke("team/rename", Principal.master, {}))
      expect(unknown).toMatchObject({ _tag: "InvalidRequest", path: "operation" })

      yield* makeTeam("t")
      yield* makeUser("m")
      yield* addMember("t", "m")
      const token = yield* makeKey({ team: "t", user: "m" })
      const principal = yield* Effect.flatMap(KeyAuth.KeyAuth, (auth) => auth.authenticate(token))
      const member: Principal.Caller = { _tag: "Key", principal }
      const refused = yield* Effect.flip(Operations.invoke("team/new", member, { team_alias: "mine" }))
      expect(refused._tag).toBe("Forbidden")
      const own = yield* Operations.invoke("key/info", member, {})
      expect(own).toMatchObject({ info: { team_id: "t", user_id: "m" } })
    }).pipe(Effect.provide(services()))
  )
})
