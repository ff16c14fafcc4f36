#!/usr/bin/env node
// Fails when `buf lint` finds a problem or when regenerating src/gen from
// proto/ would change it (generated code is committed, never hand-edited).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const buf = path.resolve("node_modules/.bin/buf");
execFileSync(buf, ["lint"], { stdio: "inherit" });

const out = mkdtempSync(path.join(tmpdir(), "mesh-gen-"));
try {
  execFileSync(buf, ["generate", "-o", out], {
    stdio: "inherit",
    env: { ...process.env, PATH: `${path.resolve("node_modules/.bin")}${path.delimiter}${process.env.PATH}` },
  });
  const fresh = listFiles(path.join(out, "src/gen"));
  const committed = listFiles("src/gen");
  const problems = [];
  for (const file of new Set([...fresh, ...committed])) {
    const a = safeRead(path.join(out, "src/gen", file));
    const b = safeRead(path.join("src/gen", file));
    if (a === undefined) problems.push(`src/gen/${file}: no longer generated (delete it)`);
    else if (b === undefined) problems.push(`src/gen/${file}: missing (run npm run gen)`);
    else if (a !== b) problems.push(`src/gen/${file}: differs from what proto/ generates (run npm run gen)`);
  }
  if (problems.length > 0) {
    console.error(`generated code is stale:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`buf lint ok; src/gen matches proto/ (${fresh.length} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}

function listFiles(dir, prefix = "") {
  let files = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) files = files.concat(listFiles(full, path.join(prefix, name)));
    else files.push(path.join(prefix, name));
  }
  return files;
}

function safeRead(file) {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
