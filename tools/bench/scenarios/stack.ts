/**
 * The systems the overhead and stream scenarios compare, all in front of
 * the same zero-delay fake engine: the engine itself ("direct"), the mesh
 * with an openai-upstream backend, and (optionally) Portkey's gateway.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { writeTinyModel } from "../../../lib/gguf/index.js";
import { startFakeOpenAI } from "../../fake-openai/index.js";
import { startMesh, startPortkey } from "../targets.js";
import type { RunningTarget } from "../targets.js";
import type { Topology } from "../../../cli/up/launcher.js";

/** Model name the stack serves. */
export const STACK_MODEL = "fake-upstream";

/** Started systems, and the ones that failed to start with why. */
export interface Stack {
  targets: RunningTarget[];
  failed: Array<{ name: string; error: string }>;
  stop(): Promise<void>;
}

/** Starts the fake engine (answering `tokens` tokens per request) and the systems in front of it. */
export async function startStack(
  tokens: number,
  withPortkey: boolean,
  log: (line: string) => void,
  topologies: readonly Topology[] = ["split"],
): Promise<Stack> {
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-bench-stack-"));
  const tokenizer = path.join(dir, "tokenizer.gguf");
  await writeTinyModel(tokenizer);
  const fake = await startFakeOpenAI({ tokens, tokenDelayMs: 0 });
  const targets: RunningTarget[] = [{ name: "direct", target: { url: fake.url, model: STACK_MODEL, apiKey: "x" }, stop: async () => {} }];
  const failed: Stack["failed"] = [];
  log(`fake engine on ${fake.url} (${tokens} tokens per answer, no delay)`);
  for (const topology of topologies) {
    const name = topology === "split" ? "mesh" : `mesh-${topology}`;
    try {
      const mesh = await startMesh(STACK_MODEL, { engine: "openai-upstream", url: fake.url, tokenizer }, topology);
      targets.push(mesh);
      log(`${name} on ${mesh.target.url} (${topology} topology, openai-upstream → fake)`);
    } catch (err) {
      failed.push({ name, error: (err as Error).message });
      log(`${name} failed to start: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  if (withPortkey) {
    try {
      const portkey = await startPortkey(fake.url, STACK_MODEL);
      targets.push(portkey);
      log(`portkey on ${portkey.target.url} (→ fake)`);
    } catch (err) {
      failed.push({ name: "portkey", error: (err as Error).message });
      log(`portkey failed to start: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return {
    targets,
    failed,
    async stop() {
      for (const t of targets) await t.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
