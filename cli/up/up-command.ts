import { catalogFromModelFlags, readCatalogFile } from "./catalog-file.js";
import { launch, TOPOLOGIES } from "./launcher.js";
import type { Topology } from "./launcher.js";
import { intFlag, parseCommandArgs, UsageError } from "../args.js";
import { telemetryConfigFrom } from "../../lib/telemetry/index.js";

export const UP_USAGE = `llm-mesh up [--port N] [--model FILE.gguf | --model NAME=FILE.gguf]... [--config mesh.yaml] [--data-dir DIR] [--topology split|combined]

Starts the whole mesh (auth, tokenizer, model-shard per backend replica, router, edge)
as supervised child processes on loopback; the edge listens on --port.
  --port      edge port (env PORT, default 8080)
  --host      edge bind address (default 0.0.0.0)
  --model     a GGUF to serve, repeatable; served under its file name or NAME
  --config    a catalog file (env MESH_CONFIG)
  --data-dir  state: SQLite file, first key, default model (env MESH_DATA_DIR, default .mesh)
  --topology  split (default: every service its own process, as on Kubernetes) or combined
              (edge, auth, router, tokenizer in one process; shards apart) (env MESH_TOPOLOGY)
  --nats      keep accounts, keys and usage in NATS JetStream at this URL (comma-separated
              for a cluster) instead of SQLite (env MESH_NATS_URL)

Models can be added and removed while it serves (llm-mesh models); a spare shard process
waits for the next one (MESH_SPARE_SHARD=0 turns it off).
Every service inherits the environment: OTEL_* (traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT
or OTEL_TRACES_EXPORTER is set), LOG_LEVEL, and LOG_FORMAT (pretty: readable lines, the default
on a terminal; json: JSON lines, the default when output is piped).`;

/** `llm-mesh up`: starts the mesh and runs until Ctrl-C / SIGTERM. */
export async function upCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    args,
    {
      port: { type: "string" },
      host: { type: "string" },
      model: { type: "string", multiple: true },
      config: { type: "string" },
      "data-dir": { type: "string" },
      nats: { type: "string" },
      topology: { type: "string" },
    },
    false,
  );
  const topology = values.topology ?? process.env.MESH_TOPOLOGY ?? "split";
  if (!TOPOLOGIES.includes(topology as Topology)) throw new UsageError(`--topology must be ${TOPOLOGIES.join(" or ")}, not "${topology}"`);
  const configFile = values.config ?? process.env.MESH_CONFIG;
  const models = values.model ?? [];
  if (configFile && models.length > 0) throw new UsageError("use either --config or --model, not both");
  const catalog = configFile ? await readCatalogFile(configFile) : models.length > 0 ? catalogFromModelFlags(models) : undefined;
  const port = intFlag("port", values.port ?? process.env.PORT, 8080);
  const dataDir = values["data-dir"] ?? process.env.MESH_DATA_DIR ?? ".mesh";
  const startedAt = performance.now();
  // Bad OTEL_* values fail here, once, rather than in every service.
  const telemetry = telemetryConfigFrom(process.env);
  const natsUrl = values.nats ?? process.env.MESH_NATS_URL;
  const mesh = await launch({ port, host: values.host ?? "0.0.0.0", dataDir, catalog, natsUrl, topology: topology as Topology });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\nllm-mesh: ${signal}, stopping every service...\n`);
    void mesh.stop().then(() => {
      process.stdout.write("llm-mesh: stopped\n");
      process.exit(0);
    });
  };
  // A closed terminal or pipe must not keep us from stopping the services.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  process.on("uncaughtException", (err) => {
    process.stderr.write(`llm-mesh: ${err.stack ?? err}\n`);
    shutdown("uncaughtException");
  });
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  const lines = ["", `llm-mesh is ready on ${mesh.url} (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`, `  OpenAI base URL: ${mesh.url}/v1`];
  if (mesh.firstApiKey) {
    lines.push(...firstKeyLines(mesh.firstApiKey, `${dataDir}/first-api-key`, process.stdout.isTTY === true));
  } else {
    lines.push(`  API key: the one created on the first start (${dataDir}/first-api-key) or MESH_BOOTSTRAP_API_KEY`);
  }
  lines.push(
    `  Metrics (Prometheus): ${mesh.url}/metrics`,
    `  Traces: ${telemetry.enabled ? `${telemetry.exporter === "console" ? "console" : `OTLP ${telemetry.protocol} to ${process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT}`} as ${telemetry.serviceNamePrefix}-<service>` : "off (set OTEL_EXPORTER_OTLP_ENDPOINT)"}`,
    `  Admin token (keys, accounts, usage, experiments): ${process.env.MESH_ADMIN_TOKEN ? "MESH_ADMIN_TOKEN" : `${dataDir}/admin-token`}`,
    `  Try: curl ${mesh.url}/v1/models -H "Authorization: Bearer $(cat ${dataDir}/first-api-key)"`,
    `       npx llm-mesh keys create --name my-app --url ${mesh.url}`,
    "",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * The banner's lines about a key created on this start: the full key only
 * to a terminal (a person reads it once); to a pipe or a log file only where
 * it is saved and its non-secret id, so no log that captures stdout holds it.
 */
export function firstKeyLines(apiKey: string, file: string, toTerminal: boolean): string[] {
  if (toTerminal) return [`  Your first API key (shown once; also in ${file}, mode 0600):`, `    ${apiKey}`];
  const hint = /^(sk-[a-z]+-[a-z0-9]+)-/.exec(apiKey)?.[1];
  return [`  Your first API key${hint ? ` (${hint}-…)` : ""} is saved in ${file} (mode 0600); it is printed in full only to a terminal`];
}
