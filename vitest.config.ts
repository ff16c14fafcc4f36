import { defineConfig } from "vitest/config";

/** The end-to-end files that run a second time against `llm-mesh up --topology combined`. */
const BOTH_TOPOLOGIES = [
  "test/e2e/openai-conformance.test.ts",
  "test/e2e/openai-errors.test.ts",
  "test/e2e/grpc-inference.test.ts",
  "test/e2e/mesh-openai-sdk.test.ts",
  "test/e2e/usage-on-cancel.test.ts",
  "test/e2e/security-regressions.test.ts",
  "test/e2e/sustained-load.test.ts",
  "test/e2e/console-browser.test.ts",
  "test/e2e/telemetry.test.ts",
  "test/reliability/r6-rolling-sigterm.test.ts",
  "test/e2e/models-live.test.ts",
];

const shared = {
  exclude: ["node_modules/**", "dist/**"],
  pool: "forks" as const,
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      // Every test; meshes start in the default (split) topology.
      { test: { ...shared, name: "split", include: ["**/*.test.ts"], env: { MESH_TOPOLOGY: "split" } } },
      // The same end-to-end behaviour with edge, auth, router and tokenizer in one process.
      { test: { ...shared, name: "combined", include: BOTH_TOPOLOGIES, env: { MESH_TOPOLOGY: "combined" } } },
    ],
  },
});
