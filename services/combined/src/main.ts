import { runService } from "../../../lib/runtime/index.js";
import { build } from "./server.js";

await runService("core", (log) => build(process.env, log));
