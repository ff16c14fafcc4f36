import { runService } from "../../../lib/runtime/index.js";
import { loadShardConfig } from "./config.js";
import { build } from "./server.js";

await runService("model-shard", (log) => build(loadShardConfig(process.env), log));
