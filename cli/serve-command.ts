import { readFile } from "node:fs/promises";
import { runService } from "../lib/runtime/index.js";
import type { Logger, RunningService } from "../lib/runtime/index.js";
import { parseCommandArgs, UsageError } from "./args.js";
import { readCatalogFile } from "./up/catalog-file.js";

export const SERVE_USAGE = `llm-mesh serve edge|auth|router|tokenizer|shard [flags]

Runs one service in the foreground, as a container runs it: JSON logs on stdout,
SIGTERM drains. Every flag has an environment variable (shown); a flag wins.
  all:        --port N (PORT)  --host ADDR (HOST)
              --nats URL (MESH_NATS_URL; comma-separated for a cluster)  --nats-prefix P (MESH_NATS_PREFIX)
              --nats-replicas N (MESH_NATS_REPLICAS: JetStream replicas of the buckets and streams it creates)
  edge:       --auth HOST:PORT (MESH_AUTH_ADDR)  --router HOST:PORT (MESH_ROUTER_ADDR)
  auth:       --data-dir DIR (MESH_DATA_DIR)  --store sqlite|nats (MESH_STORE; nats when --nats is given)
  router:     --catalog FILE (MESH_CATALOG as JSON)  --experiments-file FILE (MESH_ROUTER_EXPERIMENTS_FILE)
              --auth HOST:PORT (MESH_AUTH_ADDR: models added at run time are watched there, and keys
              with rate limits are admitted there; without it, only the catalog's models, and such keys fail)
              with --nats: shards that announce themselves join the pools, experiments are shared
  tokenizer:  --catalog FILE (MESH_CATALOG)
  shard:      --model NAME (MESH_SHARD_MODEL), and --backend FILE (MESH_SHARD_BACKEND, one backend as JSON)
              or --catalog FILE [--backend-name NAME] (the model's backend from the catalog)
              --advertise HOST:PORT (MESH_SHARD_ADVERTISE_ADDR)  --metrics-port N (METRICS_PORT)
              with --nats: announces itself there (heartbeat), so routers find it`;

/** The services `serve` runs, by the name on the command line. */
export const SERVE_SERVICES = ["edge", "auth", "router", "tokenizer", "shard"] as const;
export type ServeService = (typeof SERVE_SERVICES)[number];

const FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  nats: { type: "string" },
  "nats-prefix": { type: "string" },
  "nats-replicas": { type: "string" },
  auth: { type: "string" },
  router: { type: "string" },
  "data-dir": { type: "string" },
  store: { type: "string" },
  catalog: { type: "string" },
  "experiments-file": { type: "string" },
  model: { type: "string" },
  backend: { type: "string" },
  "backend-name": { type: "string" },
  advertise: { type: "string" },
  "metrics-port": { type: "string" },
} as const;

/** Which flags each service takes besides the common ones. */
const SERVICE_FLAGS: Record<ServeService, readonly (keyof typeof FLAGS)[]> = {
  edge: ["auth", "router"],
  auth: ["data-dir", "store"],
  router: ["catalog", "experiments-file", "auth"],
  tokenizer: ["catalog"],
  shard: ["model", "backend", "catalog", "backend-name", "advertise", "metrics-port"],
};
const COMMON_FLAGS: readonly (keyof typeof FLAGS)[] = ["port", "host", "nats", "nats-prefix", "nats-replicas"];

/**
 * The environment `service` starts with: `env` with the flags laid over it
 * (files named by flags are read here, so a bad path fails before anything
 * starts). Validation of the values is the service's own config schema's.
 */
export async function serveEnvironment(service: string, args: string[], env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const name = service === "model-shard" ? "shard" : service;
  if (!SERVE_SERVICES.includes(name as ServeService)) throw new UsageError(`unknown service "${service}"; one of ${SERVE_SERVICES.join(", ")}`);
  const { values } = parseCommandArgs(args, FLAGS, false);
  const allowed = new Set([...COMMON_FLAGS, ...SERVICE_FLAGS[name as ServeService]]);
  for (const flag of Object.keys(values)) if (!allowed.has(flag as keyof typeof FLAGS)) throw new UsageError(`--${flag} is not a flag of "serve ${name}"`);
  const out: NodeJS.ProcessEnv = { ...env };
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set("PORT", values.port);
  set("HOST", values.host);
  set("MESH_NATS_URL", values.nats);
  set("MESH_NATS_PREFIX", values["nats-prefix"]);
  set("MESH_NATS_REPLICAS", values["nats-replicas"]);
  set("MESH_AUTH_ADDR", values.auth);
  set("MESH_ROUTER_ADDR", values.router);
  set("MESH_DATA_DIR", values["data-dir"]);
  set("MESH_STORE", values.store ?? (name === "auth" && values.nats ? "nats" : undefined));
  set("MESH_ROUTER_EXPERIMENTS_FILE", values["experiments-file"]);
  set("MESH_SHARD_MODEL", values.model);
  set("MESH_SHARD_ADVERTISE_ADDR", values.advertise);
  set("METRICS_PORT", values["metrics-port"]);
  if (name === "shard") {
    if (values.backend && values.catalog) throw new UsageError("use either --backend or --catalog, not both");
    if (values.backend) set("MESH_SHARD_BACKEND", await readText(values.backend));
    else if (values.catalog) set("MESH_SHARD_BACKEND", JSON.stringify(await backendFromCatalog(values.catalog, out.MESH_SHARD_MODEL, values["backend-name"])));
  } else if (values.catalog) {
    set("MESH_CATALOG", JSON.stringify(await readCatalogFile(values.catalog)));
  }
  return out;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

async function backendFromCatalog(file: string, model: string | undefined, backendName: string | undefined): Promise<unknown> {
  if (!model) throw new UsageError("serve shard --catalog needs --model NAME (or MESH_SHARD_MODEL)");
  const catalog = await readCatalogFile(file);
  const entry = catalog.models.find((m) => m.name === model);
  if (!entry) throw new UsageError(`${file}: no model "${model}"`);
  const backend = backendName ? entry.backends.find((b) => b.name === backendName) : entry.backends.length === 1 ? entry.backends[0] : undefined;
  if (!backend) {
    throw new UsageError(
      backendName
        ? `${file}: model "${model}" has no backend "${backendName}"`
        : `${file}: model "${model}" has several backends; pick one with --backend-name`,
    );
  }
  return { ...backend, addresses: undefined };
}

/** Builds one service from its environment (each service's own config loader and build()). */
async function start(service: ServeService, env: NodeJS.ProcessEnv, log: Logger): Promise<RunningService> {
  switch (service) {
    case "edge": {
      const [{ loadEdgeConfig }, { build }] = await Promise.all([import("../services/edge/src/config.js"), import("../services/edge/src/server.js")]);
      return build(loadEdgeConfig(env), log);
    }
    case "auth": {
      const [{ loadAuthConfig }, { build }] = await Promise.all([import("../services/auth/src/config.js"), import("../services/auth/src/server.js")]);
      return build(loadAuthConfig(env), log);
    }
    case "router": {
      const [{ loadRouterConfig }, { build }] = await Promise.all([import("../services/router/src/config.js"), import("../services/router/src/server.js")]);
      return build(loadRouterConfig(env), log);
    }
    case "tokenizer": {
      const [{ loadTokenizerConfig }, { build }] = await Promise.all([
        import("../services/tokenizer/src/config.js"),
        import("../services/tokenizer/src/server.js"),
      ]);
      return build(loadTokenizerConfig(env), log);
    }
    case "shard": {
      const [{ loadShardConfig }, { build }] = await Promise.all([
        import("../services/model-shard/src/config.js"),
        import("../services/model-shard/src/server.js"),
      ]);
      return build(loadShardConfig(env), log);
    }
  }
}

/** `llm-mesh serve <service> [flags]`: one service in the foreground until SIGTERM / Ctrl-C. */
export async function serveCommand(args: string[]): Promise<void> {
  const [service, ...rest] = args;
  if (!service) throw new UsageError("which service? one of edge, auth, router, tokenizer, shard");
  const env = await serveEnvironment(service, rest, process.env);
  const name: ServeService = service === "model-shard" ? "shard" : (service as ServeService);
  await runService(name === "shard" ? "model-shard" : name, (log) => start(name, env, log));
}
