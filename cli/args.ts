import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { TINY_MODEL_PRESETS } from "../lib/gguf/index.js";
import type { TinyModelPresetName } from "../lib/gguf/index.js";

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** node:util parseArgs with errors turned into UsageErrors. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** An integer flag value, with a clear error. */
export function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** A `--preset` flag naming one of the tiny model's presets. */
export function presetFlag(value: string | undefined, fallback: TinyModelPresetName): TinyModelPresetName {
  const preset = value ?? fallback;
  if (!Object.hasOwn(TINY_MODEL_PRESETS, preset)) throw new UsageError(`--preset must be ${Object.keys(TINY_MODEL_PRESETS).join(" or ")}, got "${preset}"`);
  return preset as TinyModelPresetName;
}
