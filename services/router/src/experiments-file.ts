import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { CatalogExperiment } from "../../../lib/catalog/index.js";
import { ConfigError } from "../../../lib/runtime/index.js";

/** What the experiments file holds: the experiments as last set, and their states. */
export interface ExperimentsFileContent {
  experiments: { config: CatalogExperiment; state: "running" | "stopped" }[];
}

/** Reads the experiments file; undefined when it does not exist yet. */
export function readExperimentsFile(file: string): ExperimentsFileContent | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    const content = JSON.parse(text) as ExperimentsFileContent;
    if (!Array.isArray(content.experiments)) throw new Error("no experiments array");
    return content;
  } catch (err) {
    throw new ConfigError(`${file}: not an experiments file: ${(err as Error).message}`);
  }
}

/** Writes the experiments file atomically (temp file, then rename). */
export function writeExperimentsFile(file: string, content: ExperimentsFileContent): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`);
  renameSync(tmp, file);
}
