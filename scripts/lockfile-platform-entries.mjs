#!/usr/bin/env node
// The npm registry this project installs from serves node-llama-cpp's Linux
// binary packages but not its macOS/Windows/riscv64 ones, so `npm install`
// leaves those optional dependencies out of package-lock.json, and `npm ci`
// then refuses the lock as out of sync. This adds a platform-tagged entry for
// each missing one: npm ci skips them on this platform without fetching.
// Run it after any `npm install` that rewrites the lock (`npm run lock:fix`).
import { readFileSync, writeFileSync } from "node:fs";

const PLATFORMS = {
  "linux-riscv64": [["linux"], ["riscv64"]],
  "mac-arm64-metal": [["darwin"], ["arm64"]],
  "mac-x64": [["darwin"], ["x64"]],
  "win-arm64": [["win32"], ["arm64"]],
  "win-x64": [["win32"], ["x64"]],
  "win-x64-cuda": [["win32"], ["x64"]],
  "win-x64-cuda-ext": [["win32"], ["x64"]],
  "win-x64-vulkan": [["win32"], ["x64"]],
};

const file = "package-lock.json";
const lock = JSON.parse(readFileSync(file, "utf8"));
const packages = lock.packages;
const wanted = packages["node_modules/node-llama-cpp"]?.optionalDependencies ?? {};
const added = [];
for (const [name, version] of Object.entries(wanted)) {
  const key = `node_modules/${name}`;
  if (packages[key]) continue;
  const platform = PLATFORMS[name.split("/")[1]];
  if (!platform) throw new Error(`no platform known for ${name}: add it to PLATFORMS`);
  packages[key] = { version, cpu: platform[1], license: "MIT", optional: true, os: platform[0] };
  added.push(name);
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added.length ? `added ${added.join(", ")}` : "package-lock.json already lists every node-llama-cpp platform package");
