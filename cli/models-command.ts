import { stat } from "node:fs/promises";
import * as path from "node:path";
import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, printJson, printTable } from "./admin-client.js";
import { intFlag, parseCommandArgs, UsageError } from "./args.js";

export const MODELS_USAGE = `llm-mesh models list | add NAME (--model FILE.gguf | --upstream URL [--upstream-model M] [--upstream-key-env VAR] --tokenizer FILE) [--replicas N] [--sequences N] | remove NAME

Models added to and removed from a running mesh, without a restart (stored with the mesh's
state: SQLite, or NATS KV in cluster mode; every router on that store serves them).
  list            every model: the catalog file's (source catalog) and the added ones (source added)
  add NAME        serve NAME from a GGUF (--model, llama.cpp in a shard process the launcher starts)
                  or from an OpenAI-compatible server (--upstream http(s)://host/v1, with
                  --upstream-model, its name there, --tokenizer, the GGUF or tokenizer.json it uses, and
                  --upstream-key-env, the variable holding its API key in the shards' environment)
    --replicas    shard processes (default 1)     --sequences  parallel sequences per GGUF shard
  remove NAME     stop serving an added model: new requests get 404 model_not_found, requests
                  already running finish; catalog models are refused (edit the catalog, restart)
${ADMIN_FLAGS_USAGE}`;

interface ModelJson {
  id: string;
  source: string;
  served: boolean;
  backends: { name: string; engine?: string; replicas?: number; model?: string; url?: string }[];
  added_at: string | null;
}

/** `llm-mesh models ...`. */
export async function modelsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, {
    ...ADMIN_FLAGS,
    model: { type: "string" },
    upstream: { type: "string" },
    "upstream-model": { type: "string" },
    "upstream-key-env": { type: "string" },
    tokenizer: { type: "string" },
    replicas: { type: "string" },
    sequences: { type: "string" },
  });
  const [sub, name, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  switch (sub) {
    case "list": {
      if (name) throw new UsageError("models list takes no NAME");
      const { data } = await (await AdminClient.fromFlags(values)).request<{ data: ModelJson[] }>("GET", "models");
      return values.json ? printJson(data) : printModels(data);
    }
    case "add": {
      if (!name) throw new UsageError("models add needs a NAME");
      if (Boolean(values.model) === Boolean(values.upstream)) throw new UsageError("give exactly one of --model FILE.gguf and --upstream URL");
      if (values.upstream && !values.tokenizer) throw new UsageError("--upstream needs --tokenizer (the GGUF or tokenizer.json the upstream model uses)");
      if (values.model && (values["upstream-model"] || values["upstream-key-env"])) {
        throw new UsageError("--upstream-model and --upstream-key-env go with --upstream");
      }
      const body = {
        name,
        ...(values.model ? { model: await localFile(values.model, "model") } : {}),
        ...(values.upstream ? { upstream: values.upstream } : {}),
        ...(values["upstream-model"] ? { upstream_model: values["upstream-model"] } : {}),
        ...(values["upstream-key-env"] ? { upstream_key_env: values["upstream-key-env"] } : {}),
        ...(values.tokenizer ? { tokenizer: await localFile(values.tokenizer, "tokenizer") } : {}),
        ...(values.replicas !== undefined ? { replicas: positive("replicas", values.replicas) } : {}),
        ...(values.sequences !== undefined ? { sequences: positive("sequences", values.sequences) } : {}),
      };
      const added = await (await AdminClient.fromFlags(values)).request<ModelJson>("POST", "models", body);
      return values.json ? printJson(added) : printModels([added]);
    }
    case "remove": {
      if (!name) throw new UsageError("models remove needs a NAME");
      const removed = await (await AdminClient.fromFlags(values)).request("DELETE", `models/${name.split("/").map(encodeURIComponent).join("/")}`);
      return values.json ? printJson(removed) : void process.stdout.write(`removed ${name}\n`);
    }
    default:
      throw new UsageError(sub ? `unknown models command "${sub}"` : "say list, add or remove");
  }
}

/** A file flag as an absolute path, checked here so a typo fails before the mesh is asked. */
async function localFile(value: string, flag: string): Promise<string> {
  const file = path.resolve(value);
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new UsageError(`--${flag}: no such file: ${file}`);
  if (!info.isFile()) throw new UsageError(`--${flag}: not a regular file: ${file}`);
  return file;
}

function positive(name: string, value: string): number {
  const n = intFlag(name, value, 0);
  if (n < 1) throw new UsageError(`--${name} must be at least 1`);
  return n;
}

function printModels(data: ModelJson[]): void {
  printTable(
    ["NAME", "SOURCE", "SERVED", "BACKENDS", "ADDED"],
    data.map((m) => [
      m.id,
      m.source,
      m.served ? "yes" : "not yet",
      m.backends.map((b) => `${b.name}${b.engine ? `(${b.engine}${b.replicas ? ` x${b.replicas}` : ""})` : ""}`).join(" "),
      m.added_at ?? "-",
    ]),
  );
}
