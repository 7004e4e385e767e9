// @ts-check
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", ".teambudget/**", "coverage/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-assertions": ["error", { assertionStyle: "never" }],
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/ban-ts-comment": "error",
      "no-restricted-imports": [
        "error",
        {
          paths: [{ name: "@effect/schema", message: "Use effect/Schema: @effect/schema is a frozen copy." }],
          patterns: [{ group: ["@effect/schema/*"], message: "Use effect/Schema." }]
        }
      ],
      "no-console": "error"
    }
  },
  {
    files: ["bench/**", "examples/**", "test/**"],
    rules: { "no-console": "off" }
  }
)
