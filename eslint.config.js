// @ts-check
// `npm run lint`: typescript-eslint's type-checked recommended rules over the whole TypeScript tree (tests
// included, through tsconfig.typecheck.json), plain recommended rules for the JavaScript scripts. Formatting is
// Prettier's job (`npm run format:check`), so no rule here is about layout.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["src/gen/**", "dist/**", "node_modules/**", ".mesh/**", "bench-results/**"] },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: "./tsconfig.typecheck.json", tsconfigRootDir: import.meta.dirname } },
    rules: {},
  },
  { files: ["**/*.js", "**/*.mjs"], languageOptions: { globals: globals.node } },
  // The console page's script runs in the browser.
  { files: ["services/edge/src/console/assets/**/*.js"], languageOptions: { globals: globals.browser, sourceType: "script" } },
);
