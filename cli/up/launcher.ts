import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Catalog } from "../../lib/catalog/index.js";
import { ConfigError, freePort, logFormatFrom, preparePrivateDir } from "../../lib/runtime/index.js";
import type { LogFormat } from "../../lib/runtime/index.js";
import { ensureAdminToken, isAdminToken } from "../../services/auth/src/admin-token.js";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { checkHealth, SERVICE_TOKEN_ENV } from "../../lib/rpc/index.js";
import { HAND_OFF_ENV } from "../../lib/runtime/index.js";
import { ConnectionHandOff } from "./connection-hand-off.js";
import { catalogFromModelFlags } from "./catalog-file.js";
import { SupervisedProcess } from "./process-supervisor.js";
import { ADDED_SHARDS_FILE, AddedModelShards } from "./added-model-shards.js";
import { createLogger } from "../../lib/runtime/index.js";
import { serviceTokenFor } from "./service-token-file.js";
import type { ProcessSpec } from "./process-supervisor.js";

/** Name under which the embedded default model is served. */
export const DEFAULT_MODEL_NAME = "tiny-llama";
const READY_POLL_MS = 100;
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 15_000;

export interface LaunchOptions {
  port: number;
  host: string;
  dataDir: string;
  catalog: Catalog | undefined;
  /** Scale-out state: auth keeps accounts, keys and usage in NATS JetStream at this URL (else SQLite). */
  natsUrl?: string;
  /**
   * "split" (default, as on Kubernetes): every service its own process.
   * "combined": edge, auth, router and tokenizer in one process calling each
   * other in memory; shards stay separate processes.
   */
  topology?: Topology;
  /** Where lines go (stdout by default). */
  out?: (line: string) => void;
  /** How service log lines are shown (default: `LOG_FORMAT`, else pretty on a terminal, JSON otherwise). */
  logFormat?: LogFormat;
}

/** How the services are spread over processes. */
export type Topology = "split" | "combined";
export const TOPOLOGIES: readonly Topology[] = ["split", "combined"];

/** The process that answers clients: "edge" in split, "core" in combined. */
const FRONT = { split: "edge", combined: "core" } as const;

interface Planned {
  spec: ProcessSpec;
  address: string;
  dependsOn: string[];
  /** Where auth's gRPC answers, on the process that hosts auth. */
  authAddress?: string;
}

const SERVICES_DIR = fileURLToPath(new URL("../../services/", import.meta.url));

function serviceScript(name: string): string {
  return path.join(SERVICES_DIR, name, "src", "main.js");
}

export { freePort };

/** The catalog to serve: the given one, else the tiny model (written once into the data dir). */
export async function resolveCatalog(options: LaunchOptions): Promise<Catalog> {
  if (options.catalog) return options.catalog;
  const file = path.resolve(options.dataDir, `${DEFAULT_MODEL_NAME}.gguf`);
  if (!existsSync(file)) await writeTinyModel(file);
  return catalogFromModelFlags([`${DEFAULT_MODEL_NAME}=${file}`]);
}

/** Assigns every process its port and fills the catalog's replica addresses. */
async function plan(catalog: Catalog, options: LaunchOptions, adminToken: string, serviceToken: string, frontPort: number): Promise<Planned[]> {
  // Every child authenticates its internal gRPC calls with the service token.
  const common = { MESH_DATA_DIR: path.resolve(options.dataDir), HOST: "127.0.0.1", [SERVICE_TOKEN_ENV]: serviceToken };
  const planned: Planned[] = [];
  const add = async (name: string, service: string, env: Record<string, string>, dependsOn: string[], port?: number): Promise<Planned> => {
    const p = port ?? (await freePort());
    const item = { spec: { name, script: serviceScript(service), env: { ...common, ...env, PORT: String(p) } }, address: `127.0.0.1:${p}`, dependsOn };
    planned.push(item);
    return item;
  };
  const storeEnv: Record<string, string> = options.natsUrl ? { MESH_STORE: "nats", MESH_NATS_URL: options.natsUrl } : { MESH_STORE: "sqlite" };
  const shards: string[] = [];
  for (const model of catalog.models) {
    for (const backend of model.backends) {
      backend.addresses = [];
      for (let i = 0; i < backend.replicas; i++) {
        const name = `shard:${model.name}/${backend.name}${backend.replicas > 1 ? `#${i}` : ""}`;
        // METRICS_PORT set for `up` means "expose metrics": each shard gets a port of its own.
        const metrics: Record<string, string> = process.env.METRICS_PORT ? { METRICS_PORT: String(await freePort()) } : {};
        // MESH_NATS_URL empty: the launcher's shards are on loopback and known by address; announcing them would hand other machines' routers 127.0.0.1.
        const shard = await add(
          name,
          "model-shard",
          { MESH_SHARD_MODEL: model.name, MESH_SHARD_BACKEND: JSON.stringify({ ...backend, addresses: undefined }), MESH_NATS_URL: "", ...metrics },
          [],
        );
        backend.addresses.push(shard.address);
        shards.push(name);
      }
    }
  }
  const catalogJson = JSON.stringify(catalog);
  // Run-time experiment changes survive restarts.
  const routerEnv: Record<string, string> = {
    MESH_CATALOG: catalogJson,
    MESH_ROUTER_EXPERIMENTS_FILE: path.resolve(options.dataDir, "experiments.json"),
    // Models added at run time: the router watches auth for them and this file for their shards' addresses.
    MESH_ROUTER_SHARDS_FILE: path.resolve(options.dataDir, ADDED_SHARDS_FILE),
  };
  // METRICS_PORT set for `up`: the router's metrics get a port of their own too (it logs it).
  if (process.env.METRICS_PORT) routerEnv.METRICS_PORT = String(await freePort());
  // With --nats, experiments (config and statistics) are shared with every mesh on that NATS.
  if (options.natsUrl) routerEnv.MESH_NATS_URL = options.natsUrl;
  if (options.topology === "combined") {
    const targets = Object.fromEntries(planned.map((p) => [p.spec.name, p.address]));
    // Auth inside core gets a known port: the launcher watches its added models there.
    const authPort = String(await freePort());
    const front = { [HAND_OFF_ENV]: "ipc", HOST: options.host };
    const coreEnv = {
      MESH_ADMIN_TOKEN: adminToken,
      ...storeEnv,
      ...routerEnv,
      MESH_COMBINED_AUTH_PORT: authPort,
      MESH_HEALTH_TARGETS: JSON.stringify(targets),
      ...front,
    };
    const core = await add("core", "combined", coreEnv, shards, frontPort);
    core.authAddress = `127.0.0.1:${authPort}`;
    return planned;
  }
  const authMetrics: Record<string, string> = process.env.METRICS_PORT ? { METRICS_PORT: String(await freePort()) } : {};
  const auth = await add("auth", "auth", { MESH_ADMIN_TOKEN: adminToken, ...storeEnv, ...authMetrics }, []);
  auth.authAddress = auth.address;
  // The router tokenizes in process; the tokenizer service serves gRPC callers.
  await add("tokenizer", "tokenizer", { MESH_CATALOG: catalogJson }, []);
  const router = await add("router", "router", { ...routerEnv, MESH_AUTH_ADDR: auth.address }, [...shards, "auth"]);
  const targets = Object.fromEntries(planned.map((p) => [p.spec.name, p.address]));
  await add(
    "edge",
    "edge",
    { MESH_AUTH_ADDR: auth.address, MESH_ROUTER_ADDR: router.address, MESH_HEALTH_TARGETS: JSON.stringify(targets), HOST: options.host, [HAND_OFF_ENV]: "ipc" },
    ["auth", "router"],
    frontPort,
  );
  return planned;
}

/** A running mesh: its processes, and how to stop all of them. */
export interface Mesh {
  url: string;
  processes: Map<string, SupervisedProcess>;
  firstApiKey: string | undefined;
  /** The service token every child authenticates internal gRPC with (for tools that call a service directly). */
  serviceToken: string;
  stop(): Promise<void>;
}

/**
 * Starts every service as a child process, each only after the services it
 * depends on report SERVING over `grpc.health.v1`.
 */
export async function launch(options: LaunchOptions): Promise<Mesh> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Given an `out`, lines go to code, not a terminal: JSON unless asked otherwise.
  const terminal = !options.out && Boolean(process.stdout.isTTY);
  const logFormat = options.logFormat ?? logFormatFrom(process.env, terminal);
  const launchedAt = Date.now();
  // 0700, and refused (before anything starts) when group or others can write it.
  preparePrivateDir(options.dataDir);
  const catalog = await resolveCatalog(options);
  const serviceToken = await serviceTokenFor(options.dataDir);
  // The launcher owns the public port: a restarting front process delays connections instead of refusing them.
  const handOff = await ConnectionHandOff.listen(options.host, options.port);
  const frontName = FRONT[options.topology ?? "split"];
  let planned: Planned[];
  try {
    planned = await plan(catalog, options, await adminTokenFor(options.dataDir), serviceToken, handOff.port);
  } catch (err) {
    await handOff.close();
    throw err;
  }
  const processes = new Map<string, SupervisedProcess>();
  const ready = new Map<string, Promise<void>>();
  let stopping = false;
  const authAddress = planned.find((p) => p.authAddress)!.authAddress!;
  const added = new AddedModelShards({
    dataDir: path.resolve(options.dataDir),
    authAddress,
    serviceToken,
    env: { MESH_DATA_DIR: path.resolve(options.dataDir), HOST: "127.0.0.1", [SERVICE_TOKEN_ENV]: serviceToken },
    script: serviceScript("model-shard"),
    out,
    logFormat,
    color: terminal,
    log: createLogger("launcher"),
    waitServing: (name, address, cancelled) => waitServing(name, address, () => stopping || cancelled()),
    stopGraceMs: STOP_GRACE_MS,
    spare: process.env.MESH_SPARE_SHARD !== "0",
  });
  // Booting beside the mesh's own processes, so the first model added is served without waiting for a process to start.
  added.startSpare();
  const stop = async (): Promise<void> => {
    stopping = true;
    // No new connections; then front to back: the edge stops taking requests first.
    const closed = handOff.close();
    for (const item of [...planned].reverse()) {
      await processes.get(item.spec.name)?.stop(STOP_GRACE_MS);
      // Added models' shards stop with the catalog's, once nothing routes to them.
      if (item.spec.name === "router" || item.spec.name === "core") await added.stop();
    }
    await added.stop();
    await closed;
  };
  try {
    for (const item of planned) {
      const started = (async () => {
        await Promise.all(item.dependsOn.map((d) => ready.get(d) ?? Promise.resolve()));
        if (stopping) return;
        const proc = new SupervisedProcess(item.spec, out, logFormat, terminal);
        if (item.spec.name === frontName) proc.onSpawn = (child) => handOff.attach(child);
        processes.set(item.spec.name, proc);
        proc.start();
        await waitServing(item.spec.name, item.address, () => stopping);
      })();
      ready.set(item.spec.name, started);
    }
    await Promise.all(ready.values());
    await added.start();
  } catch (err) {
    await stop();
    throw err;
  }
  const keyFile = path.join(options.dataDir, "first-api-key");
  let firstApiKey: string | undefined;
  if (existsSync(keyFile) && (await stat(keyFile)).mtimeMs >= launchedAt - 1_000) firstApiKey = (await readFile(keyFile, "utf8")).trim();
  return { url: `http://127.0.0.1:${handOff.port}`, processes, firstApiKey, serviceToken, stop };
}

/**
 * The operator's admin token: MESH_ADMIN_TOKEN when set, else the data
 * dir's `admin-token`, which the first start creates (mode 0600).
 */
async function adminTokenFor(dataDir: string): Promise<string> {
  const fromEnv = process.env.MESH_ADMIN_TOKEN;
  if (fromEnv) {
    if (!isAdminToken(fromEnv)) {
      throw new ConfigError("MESH_ADMIN_TOKEN must be mesh-admin- followed by 43 base64url characters (or unset: the data dir's admin-token is used)");
    }
    return fromEnv;
  }
  return ensureAdminToken(dataDir);
}

async function waitServing(name: string, address: string, cancelled: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!cancelled()) {
    if (await checkHealth(address, 1_000)) return;
    if (Date.now() > deadline) throw new Error(`${name} did not report SERVING within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}
