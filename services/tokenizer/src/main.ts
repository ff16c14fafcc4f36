import { runService } from "../../../lib/runtime/index.js";
import { loadTokenizerConfig } from "./config.js";
import { build } from "./server.js";

await runService("tokenizer", (log) => build(loadTokenizerConfig(process.env), log));
