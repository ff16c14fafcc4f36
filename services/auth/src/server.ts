import * as path from "node:path";
import { AuthService as AuthServiceDesc, KeyAdminService as KeyAdminServiceDesc } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { ModelAdminService as ModelAdminServiceDesc } from "../../../src/gen/mesh/auth/v1/models_pb.js";
import { startRpcServer } from "../../../lib/rpc/index.js";
import { ensurePrivateFile, preparePrivateDir, tightenFiles } from "../../../lib/runtime/index.js";
import type { Logger, RunningService } from "../../../lib/runtime/index.js";
import { ADMIN_TOKEN_FILE, readAdminToken } from "./admin-token.js";
import { AuthService } from "./auth-service.js";
import { AuthMetrics } from "./auth-metrics.js";
import { startMetricsServer } from "../../../lib/metrics/index.js";
import type { MetricsServer } from "../../../lib/metrics/index.js";
import type { AuthServiceOptions } from "./auth-service.js";
import { ensureFirstKey, FIRST_KEY_FILE } from "./bootstrap.js";
import type { AuthConfig } from "./config.js";
import { KeyAdminService } from "./key-admin-service.js";
import { openRateLimiter } from "./open-rate-limiter.js";
import { RetentionSweeper } from "./retention-sweeper.js";
import { ModelAdminService } from "./model-admin-service.js";
import { NATS_OUTBOX_FILE, openKeyStore, openModelStore } from "./store/index.js";

export const DATABASE_FILE = "mesh.db";

/** Test seams: the clock and the watch heartbeat. */
export interface AuthBuildOptions {
  now?: () => number;
  heartbeatMs?: AuthServiceOptions["heartbeatMs"];
}

export async function build(
  config: AuthConfig,
  log: Logger,
  options: AuthBuildOptions = {},
): Promise<
  RunningService & {
    auth: AuthService;
    admin: KeyAdminService;
    models: ModelAdminService;
    sweeper: RetentionSweeper;
    metrics: AuthMetrics;
    metricsPort?: number;
  }
> {
  const databaseFile = securePrivateFiles(config);
  const { store, followChanges } = await openKeyStore(config, log, databaseFile);
  if (await ensureFirstKey(store, config.dataDir, config.bootstrapApiKey)) {
    log.info({ file: path.join(config.dataDir, FIRST_KEY_FILE) }, "created the first API key");
  }
  const now = options.now ?? Date.now;
  const limiter = await openRateLimiter(config, log, now);
  const auth = new AuthService(store, { now, heartbeatMs: options.heartbeatMs, limiter });
  const metrics = new AuthMetrics();
  metrics.instrument(auth);
  const adminToken = config.adminToken ?? (await readAdminToken(config.dataDir));
  if (!adminToken) log.warn("no admin token (MESH_ADMIN_TOKEN or <data dir>/admin-token): the admin API refuses every call");
  // With NATS every replica (this one too) pushes changes from the KV watch, so the admin's own push would double them.
  followChanges?.((c) => auth.publish(c));
  const admin = new KeyAdminService({ store, publish: followChanges ? () => undefined : (c) => auth.publish(c), limiter: auth.limiter, adminToken, now });
  const modelStore = await openModelStore(config, log, databaseFile);
  const models = new ModelAdminService({ store: modelStore, adminToken, now });
  const sweeper = new RetentionSweeper(store, { now, log });
  sweeper.start();
  const server = await startRpcServer({
    host: config.host,
    port: config.port,
    serviceNames: [AuthServiceDesc.typeName, KeyAdminServiceDesc.typeName, ModelAdminServiceDesc.typeName],
    routes: (router) => {
      router.service(AuthServiceDesc, auth);
      router.service(KeyAdminServiceDesc, admin);
      router.service(ModelAdminServiceDesc, models);
    },
  });
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer(metrics.registry, { host: config.host, port: config.metricsPort });
    log.info({ port: metricsServer.port }, "metrics on GET /metrics");
  }
  return {
    port: server.port,
    metrics,
    metricsPort: metricsServer?.port,
    auth,
    admin,
    models,
    sweeper,
    async close(drainMs) {
      sweeper.stop();
      await server.close(drainMs);
      await metricsServer?.close();
      await store.close();
      await modelStore.close();
      await limiter.close?.();
    },
  };
}

/**
 * The data dir 0700 (refused when group or others can write it), the
 * SQLite file created 0600 before SQLite opens it (its -wal and -shm take
 * its mode), and the secrets an older version left readable set to 0600.
 * Returns the database file's path.
 */
function securePrivateFiles(config: AuthConfig): string {
  preparePrivateDir(config.dataDir);
  const databaseFile = path.join(config.dataDir, DATABASE_FILE);
  if ((config.store ?? "sqlite") === "sqlite") ensurePrivateFile(databaseFile);
  tightenFiles([`${databaseFile}-wal`, `${databaseFile}-shm`, FIRST_KEY_FILE, ADMIN_TOKEN_FILE, NATS_OUTBOX_FILE].map((f) => path.resolve(config.dataDir, f)));
  return databaseFile;
}
