import { runService } from "../../../lib/runtime/index.js";
import { loadAuthConfig } from "./config.js";
import { build } from "./server.js";

await runService("auth", (log) => build(loadAuthConfig(process.env), log));
