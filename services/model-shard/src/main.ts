import { runService } from "../../../lib/runtime/index.js";
import { loadShardConfig } from "./config.js";
import { build } from "./server.js";
import { waitForAssignment } from "./standby.js";

await waitForAssignment();
await runService("model-shard", (log) => build(loadShardConfig(process.env), log));
