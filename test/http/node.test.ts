import { describeFramework } from "../support/httpScenarios.js"

describeFramework("node")
