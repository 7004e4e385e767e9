/**
 * The LiteLLM-compatible management contract: request schemas (LiteLLM JSON in,
 * typed requests out), their decoder, response renderers and the endpoint table.
 *
 * @since 0.1.0
 */
export * as BudgetRequests from "./BudgetRequests.js"
export * as CustomerRequests from "./CustomerRequests.js"
export * as Decode from "./Decode.js"
export * as Fields from "./Fields.js"
export * as KeyRequests from "./KeyRequests.js"
export * as OrganizationRequests from "./OrganizationRequests.js"
export * as Render from "./Render.js"
export * as Routes from "./Routes.js"
export * as SpendRequests from "./SpendRequests.js"
export * as TeamRequests from "./TeamRequests.js"
export * as UserRequests from "./UserRequests.js"
