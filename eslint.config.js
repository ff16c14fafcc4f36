// @ts-check
// `npm run lint`: typescript-eslint's type-checked recommended rules over the whole TypeScript tree (tests
// included, through tsconfig.typecheck.json), plain recommended rules for the JavaScript scripts. Formatting is
// Prettier's job (`npm run format:check`), so no rule here is about layout.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  // Generated code, build output and what .gitignore keeps out of the tree.
  { ignores: ["src/gen/**", "dist/**", "node_modules/**", ".mesh/**", "bench-results/**", "coverage/**", "scratch/**", "test-results/**", "tmp/**"] },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: "./tsconfig.typecheck.json", tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A leading underscore marks a deliberately unused binding (a destructured-away field, a parameter an interface requires).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      // Methods implementing an async interface (KeyStore adapters, connect handlers, fakes) are async by contract, awaiting or not.
      "@typescript-eslint/require-await": "off",
      // Passing on a caught `unknown` as it came keeps the original error (and its class) for the caller.
      "@typescript-eslint/only-throw-error": ["error", { allowThrowingUnknown: true }],
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // A closure may read a binding assigned after it is made (a metric reading the service built after the metric).
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ["**/*.test.ts", "test/**/*.ts"],
    rules: {
      // Tests read untyped JSON (response bodies, rendered manifests) and the expect() beside each access checks its shape.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-explicit-any": "off",
      // expect(mock.method).toHaveBeenCalled() passes a method without calling it, which is what vitest's matchers take.
      "@typescript-eslint/unbound-method": "off",
    },
  },
  { files: ["**/*.js", "**/*.mjs"], languageOptions: { globals: globals.node } },
  // The console page's script runs in the browser.
  { files: ["services/edge/src/console/assets/**/*.js"], languageOptions: { globals: globals.browser, sourceType: "script" } },
);
