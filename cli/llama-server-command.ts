import { findLlamaServer, llamaRelease, llamaServerBinary, llamaServerCacheDir } from "../lib/llama-server/index.js";
import { parseCommandArgs, UsageError } from "./args.js";

export const LLAMA_SERVER_USAGE = `llm-mesh llama-server build|path

The llama-server binary behind the llama.cpp engine's "runtime": "llama-server"
(and the benchmarks' llama-server peer), built from the llama.cpp source
node-llama-cpp ships, so it is the same llama.cpp release as the in-process engine.

  build   build it once (git clone of the shipped bundle, cmake; ~13 minutes on 2
          cores) into ~/.cache/llm-mesh/llama-server-<release>/
          (MESH_LLAMA_SERVER_CACHE moves it); prints the binary's path
  path    print the path in use (LLAMA_SERVER_BIN, else the cached build); exit 1 if none`;

export async function llamaServerCommand(args: string[]): Promise<void> {
  const { positionals } = parseCommandArgs(args, {});
  const [verb, ...rest] = positionals;
  if (rest.length > 0 || (verb !== "build" && verb !== "path")) throw new UsageError("give build or path");
  if (verb === "build") {
    const binary = await llamaServerBinary((line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`${binary}\n`);
    return;
  }
  const binary = findLlamaServer();
  if (!binary) {
    process.stderr.write(`llama-server ${llamaRelease()} is not built (${llamaServerCacheDir()}): run llm-mesh llama-server build\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${binary}\n`);
}
