import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Client } from "@connectrpc/connect";
import { AuthService, KeyAdminService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { createLogger } from "../../lib/runtime/index.js";
import { generateAdminToken } from "../../services/auth/src/admin-token.js";
import { build } from "../../services/auth/src/server.js";

/** A settable clock for auth. */
export interface TestClock {
  t: number;
  now: () => number;
}

export function testClock(start = Date.now()): TestClock {
  const c: TestClock = { t: start, now: () => c.t };
  return c;
}

export { until } from "../support/until.js";

/** A real auth server on a port-0 socket with its own data dir and admin token. */
export async function startAuth(options: { clock?: TestClock; heartbeatMs?: number } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-auth-"));
  const adminToken = generateAdminToken();
  const log = createLogger("auth-test");
  log.level = "silent";
  const server = await build({ port: 0, host: "127.0.0.1", dataDir, bootstrapApiKey: undefined, adminToken }, log, {
    now: options.clock?.now,
    heartbeatMs: options.heartbeatMs,
  });
  const address = `127.0.0.1:${server.port}`;
  const auth: Client<typeof AuthService> = grpcClient(AuthService, address);
  const admin: Client<typeof KeyAdminService> = grpcClient(KeyAdminService, address);
  const asAdmin = { headers: { authorization: `Bearer ${adminToken}` } };
  return {
    server,
    address,
    dataDir,
    adminToken,
    auth,
    admin,
    asAdmin,
    async stop() {
      await server.close(500);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
