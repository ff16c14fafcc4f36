import { runService } from "../../../lib/runtime/index.js";
import { loadEdgeConfig } from "./config.js";
import { build } from "./server.js";

await runService("edge", (log) => build(loadEdgeConfig(process.env), log));
