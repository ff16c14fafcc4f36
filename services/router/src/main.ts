import { runService } from "../../../lib/runtime/index.js";
import { loadRouterConfig } from "./config.js";
import { build } from "./server.js";

await runService("router", (log) => build(loadRouterConfig(process.env), log));
