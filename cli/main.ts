import { ConfigError } from "../lib/runtime/index.js";
import { UsageError } from "./args.js";
import { experimentsCommand, EXPERIMENTS_USAGE } from "./experiments-command.js";
import { benchCommand, BENCH_USAGE } from "./bench-command.js";
import { tinyModelCommand, TINY_MODEL_USAGE } from "./tiny-model-command.js";
import { upCommand, UP_USAGE } from "./up/up-command.js";
import { keysCommand, KEYS_USAGE } from "./keys-command.js";
import { accountsCommand, ACCOUNTS_USAGE } from "./accounts-command.js";
import { usageCommand, USAGE_USAGE } from "./usage-command.js";
import { consoleTokenCommand, CONSOLE_TOKEN_USAGE } from "./console-token-command.js";
import { serveCommand, SERVE_USAGE } from "./serve-command.js";
import { modelsCommand, MODELS_USAGE } from "./models-command.js";
import { llamaServerCommand, LLAMA_SERVER_USAGE } from "./llama-server-command.js";

type Command = { run: (args: string[]) => Promise<void>; usage: string };

/** Every `llm-mesh` command. Others register here as they are built. */
export const COMMANDS: Record<string, Command> = {
  up: { run: upCommand, usage: UP_USAGE },
  serve: { run: serveCommand, usage: SERVE_USAGE },
  "tiny-model": { run: tinyModelCommand, usage: TINY_MODEL_USAGE },
  experiments: { run: experimentsCommand, usage: EXPERIMENTS_USAGE },
  models: { run: modelsCommand, usage: MODELS_USAGE },
  keys: { run: keysCommand, usage: KEYS_USAGE },
  accounts: { run: accountsCommand, usage: ACCOUNTS_USAGE },
  usage: { run: usageCommand, usage: USAGE_USAGE },
  "console-token": { run: consoleTokenCommand, usage: CONSOLE_TOKEN_USAGE },
  bench: { run: benchCommand, usage: BENCH_USAGE },
  "llama-server": { run: llamaServerCommand, usage: LLAMA_SERVER_USAGE },
};

function usage(): string {
  return `usage: llm-mesh <command> [options]\n\n${Object.values(COMMANDS)
    .map((c) => c.usage.split("\n")[0])
    .join("\n")}\n\nllm-mesh <command> --help for details`;
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`llm-mesh: unknown command "${name}"\n\n${usage()}\n`);
    process.exit(2);
  }
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${command.usage}\n`);
    return;
  }
  try {
    await command.run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`llm-mesh ${name}: ${err.message}\n\n${command.usage}\n`);
      process.exit(2);
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`llm-mesh ${name}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

await main(process.argv.slice(2));
