/**
 * Builders for entities written straight through the store ports, so service tests
 * do not depend on the management API.
 */
import { Clock, DateTime, Effect, Option, Schema } from "effect"
import {
  BudgetDuration,
  Ids,
  KeyRepo,
  Limits,
  MembershipRepo,
  Money,
  OrganizationRepo,
  SpendLogRepo,
  TeamRepo,
  Token,
  UserRepo
} from "../../src/index.js"

export const usd = (value: number): Money.Money => {
  const money = Money.fromUsd(value)
  if (money === undefined) throw new Error(`not a USD amount: ${value}`)
  return money
}

export const duration = (text: string): BudgetDuration.BudgetDuration =>
  Schema.decodeSync(BudgetDuration.FromString)(text)

export const limits = (fields: {
  maxBudget?: number
  budgetDuration?: string
  tpmLimit?: number
  rpmLimit?: number
}): Limits.Limits =>
  new Limits.Limits({
    ...Limits.none,
    maxBudget: Option.fromNullable(fields.maxBudget).pipe(Option.map(usd)),
    budgetDuration: Option.fromNullable(fields.budgetDuration).pipe(Option.map(duration)),
    tpmLimit: Option.fromNullable(fields.tpmLimit),
    rpmLimit: Option.fromNullable(fields.rpmLimit)
  })

export const teamId = Schema.decodeSync(Ids.TeamId)
export const userId = Schema.decodeSync(Ids.UserId)
export const orgId = Schema.decodeSync(Ids.OrganizationId)
export const keyId = Schema.decodeSync(Ids.KeyId)

export const makeOrganization = (id: string, orgLimits: Limits.Limits = Limits.none, models: string[] = []) =>
  Effect.flatMap(OrganizationRepo, (repo) =>
    repo.insert({
      organizationId: orgId(id),
      organizationAlias: id,
      limits: orgLimits,
      models,
      blocked: false
    })
  )

export const makeTeam = (
  id: string,
  teamLimits: Limits.Limits = Limits.none,
  extra: { organizationId?: string; models?: string[] } = {}
) =>
  Effect.flatMap(TeamRepo, (repo) =>
    repo.insert({
      teamId: teamId(id),
      teamAlias: id,
      organizationId: Option.fromNullable(extra.organizationId).pipe(Option.map(orgId)),
      limits: teamLimits,
      models: extra.models ?? [],
      blocked: false,
      metadata: {}
    })
  )

export const makeUser = (id: string, userLimits: Limits.Limits = Limits.none) =>
  Effect.flatMap(UserRepo, (repo) =>
    repo.insert({
      userId: userId(id),
      userEmail: Option.none(),
      userRole: "internal_user",
      limits: userLimits,
      models: [],
      blocked: false,
      metadata: {}
    })
  )

export const addMember = (
  team: string,
  user: string,
  memberLimits: Option.Option<Limits.Limits> = Option.none()
) =>
  Effect.flatMap(MembershipRepo, (repo) =>
    repo.add(teamId(team), [{ userId: userId(user), role: "user", limits: memberLimits }])
  )

/** Creates a key and returns its plaintext token. */
export const makeKey = (
  options: {
    team?: string
    user?: string
    limits?: Limits.Limits
    models?: string[]
    expiresInMillis?: number
    alias?: string
  } = {}
) =>
  Effect.gen(function* () {
    const repo = yield* KeyRepo
    const token = Token.generateToken()
    const now = yield* Clock.currentTimeMillis
    yield* repo.insert({
      keyId: keyId(crypto.randomUUID()),
      hash: Token.hashToken(token),
      keyAlias: Option.fromNullable(options.alias),
      displayPrefix: Token.displayPrefix(token),
      userId: Option.fromNullable(options.user).pipe(Option.map(userId)),
      teamId: Option.fromNullable(options.team).pipe(Option.map(teamId)),
      limits: options.limits ?? Limits.none,
      models: options.models ?? [],
      expires:
        options.expiresInMillis === undefined
          ? Option.none()
          : Option.some(DateTime.unsafeMake(now + options.expiresInMillis)),
      blocked: false,
      metadata: {}
    })
    return token
  })

/** The spend log rows whose prompt tokens are `promptTokens`: a test gives each request its own count to find its row. */
export const rowsWithPromptTokens = (promptTokens: number) =>
  Effect.map(
    Effect.flatMap(SpendLogRepo, (repo) => repo.query({})),
    (rows) => rows.filter((row) => row.promptTokens === promptTokens)
  )
