import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import { AuthService as AuthServiceDesc } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { startRpcServer } from "../../../lib/rpc/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { AuthService } from "./auth-service.js";
import { ensureFirstKey } from "./bootstrap.js";
import type { AuthConfig } from "./config.js";
import { SqliteKeyStore } from "./store/index.js";

export const DATABASE_FILE = "mesh.db";

export async function build(config: AuthConfig, log: Logger): Promise<RunningService & { auth: AuthService }> {
  await mkdir(config.dataDir, { recursive: true });
  const store = new SqliteKeyStore(path.join(config.dataDir, DATABASE_FILE));
  if (await ensureFirstKey(store, config.dataDir, config.bootstrapApiKey)) {
    log.info({ file: path.join(config.dataDir, "first-api-key") }, "created the first API key");
  }
  const auth = new AuthService(store);
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [AuthServiceDesc.typeName],
    routes: (router) => router.service(AuthServiceDesc, auth),
  });
  return {
    port: server.port,
    auth,
    async close(drainMs) {
      await server.close(drainMs);
      await store.close();
    },
  };
}
