#!/usr/bin/env node
// The built CLI lives in dist/ (`npm run build`; `npm start` builds first).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("llm-mesh: not built yet; run `npm run build` first\n");
  process.exit(1);
}
await import(entry.href);
