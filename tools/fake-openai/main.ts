import { parseArgs } from "node:util";
import { startFakeOpenAI } from "./fake-openai.js";

/**
 * `node dist/tools/fake-openai/main.js [--port N] [--tokens N] [--token-delay-ms N]`:
 * runs the fake OpenAI-compatible engine until SIGINT/SIGTERM.
 */
const { values } = parseArgs({
  options: { port: { type: "string" }, host: { type: "string" }, tokens: { type: "string" }, "token-delay-ms": { type: "string" } },
});
const fake = await startFakeOpenAI({
  port: values.port ? Number(values.port) : 8000,
  host: values.host,
  tokens: values.tokens ? Number(values.tokens) : undefined,
  tokenDelayMs: values["token-delay-ms"] ? Number(values["token-delay-ms"]) : undefined,
});
process.stdout.write(`fake-openai listening on ${fake.url}\n`);
const stop = (): void => void fake.close().then(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
