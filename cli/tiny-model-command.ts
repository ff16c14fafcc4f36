import { DEFAULT_TINY_MODEL_SEED, writeTinyModel } from "../lib/gguf/index.js";
import { intFlag, parseCommandArgs, presetFlag, UsageError } from "./args.js";

export const TINY_MODEL_USAGE = `llm-mesh tiny-model OUT.gguf [--seed N] [--preset tiny|bench]

Writes a random-weight llama-architecture GGUF with a real vocabulary and chat
template: "tiny" (default, < 1 MB) for tests, "bench" (~110 MB, compute-bound) for batching benchmarks.`;

export async function tinyModelCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, { seed: { type: "string" }, preset: { type: "string" } });
  if (positionals.length !== 1) throw new UsageError("give exactly one output file");
  const preset = presetFlag(values.preset, "tiny");
  const result = await writeTinyModel(positionals[0], { seed: intFlag("seed", values.seed, DEFAULT_TINY_MODEL_SEED), preset });
  process.stdout.write(`wrote ${result.path} (${result.preset}, ${result.bytes} bytes)\n`);
}
