import { open, stat } from "node:fs/promises";
import * as path from "node:path";
import { modelSchema } from "./catalog.js";
import type { CatalogModel } from "./catalog.js";

/** A stored entry larger than this is refused before it is parsed. */
export const MAX_ADDED_MODEL_JSON_BYTES = 16 * 1024;
/** Longest model name an added model may have. */
export const MAX_ADDED_MODEL_NAME_CHARS = 128;
/** Longest path or URL an added model may name. */
export const MAX_ADDED_MODEL_PATH_CHARS = 4_096;
/** Shard processes one added backend may ask for. */
export const MAX_ADDED_MODEL_REPLICAS = 16;
/** Stored (added) models one mesh keeps at most. */
export const MAX_ADDED_MODELS = 256;
const GGUF_MAGIC = "GGUF";

/** What `llm-mesh models add` and `POST /admin/v1/models` describe. */
export interface AddModelSpec {
  name: string;
  /** A GGUF file (llama.cpp in process). */
  model?: string;
  /** An OpenAI-compatible base URL (openai-upstream). */
  upstream?: string;
  upstreamModel?: string;
  /** The environment variable (of the shard processes) holding the upstream's key. */
  upstreamKeyEnv?: string;
  /** The tokenizer (GGUF or tokenizer.json); required with `upstream`. */
  tokenizer?: string;
  replicas?: number;
  sequences?: number;
}

/** A problem with an added model, said to the operator as is (becomes InvalidArgument / 400). */
export class AddedModelError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * The catalog entry for an added model: one backend, "local" (llama.cpp on
 * the GGUF) or "upstream" (openai-upstream at the URL). Checks names, sizes
 * and URL schemes; files are checked by {@link checkAddedModelFiles}.
 */
export function addedModelEntry(spec: AddModelSpec): CatalogModel {
  if (typeof spec.name !== "string" || spec.name.length === 0 || spec.name.length > MAX_ADDED_MODEL_NAME_CHARS) {
    throw new AddedModelError(`name must be 1-${MAX_ADDED_MODEL_NAME_CHARS} characters`, "name");
  }
  if ((spec.model === undefined) === (spec.upstream === undefined)) {
    throw new AddedModelError("give exactly one of model (a GGUF file) and upstream (a URL)", "model");
  }
  for (const [param, value] of [
    ["model", spec.model],
    ["upstream", spec.upstream],
    ["upstream_model", spec.upstreamModel],
    ["tokenizer", spec.tokenizer],
  ] as const) {
    if (value !== undefined && (typeof value !== "string" || value.length === 0 || value.length > MAX_ADDED_MODEL_PATH_CHARS)) {
      throw new AddedModelError(`${param} must be 1-${MAX_ADDED_MODEL_PATH_CHARS} characters`, param);
    }
  }
  const replicas = spec.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_ADDED_MODEL_REPLICAS) {
    throw new AddedModelError(`replicas must be 1-${MAX_ADDED_MODEL_REPLICAS}`, "replicas");
  }
  let backend: Record<string, unknown>;
  if (spec.model !== undefined) {
    if (spec.upstreamModel !== undefined) throw new AddedModelError("upstream_model goes with upstream, not model", "upstream_model");
    if (spec.upstreamKeyEnv !== undefined) throw new AddedModelError("upstream_key_env goes with upstream, not model", "upstream_key_env");
    backend = { name: "local", engine: "llama.cpp", model: spec.model, replicas, ...(spec.sequences === undefined ? {} : { sequences: spec.sequences }) };
  } else {
    let url: URL;
    try {
      url = new URL(spec.upstream!);
    } catch {
      throw new AddedModelError("upstream must be an http:// or https:// URL", "upstream");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new AddedModelError("upstream must be an http:// or https:// URL", "upstream");
    if (url.username || url.password) throw new AddedModelError("upstream must not carry credentials in the URL", "upstream");
    if (spec.sequences !== undefined) throw new AddedModelError("sequences goes with model (llama.cpp), not upstream", "sequences");
    if (spec.tokenizer === undefined) {
      throw new AddedModelError("tokenizer (the GGUF or tokenizer.json the upstream model uses) is required with upstream", "tokenizer");
    }
    if (spec.upstreamKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(spec.upstreamKeyEnv)) {
      throw new AddedModelError("upstream_key_env must be an environment variable name", "upstream_key_env");
    }
    backend = {
      name: "upstream",
      engine: "openai-upstream",
      url: url.href.replace(/\/+$/, ""),
      replicas,
      ...(spec.upstreamModel ? { upstream_model: spec.upstreamModel } : {}),
      ...(spec.upstreamKeyEnv ? { api_key_env: spec.upstreamKeyEnv } : {}),
    };
  }
  return parseAddedModelEntry(JSON.stringify({ name: spec.name, ...(spec.tokenizer ? { tokenizer: spec.tokenizer } : {}), backends: [backend] }));
}

/**
 * Parses and checks a stored entry (JSON of the catalog's model schema) as
 * every reader of the store does: bounded size, the catalog's own rules, one
 * or more backends of llama.cpp or openai-upstream only, absolute paths,
 * http(s) URLs, no replica addresses and no upstream key in the entry.
 */
export function parseAddedModelEntry(json: string): CatalogModel {
  if (Buffer.byteLength(json, "utf8") > MAX_ADDED_MODEL_JSON_BYTES) {
    throw new AddedModelError(`the model entry is larger than ${MAX_ADDED_MODEL_JSON_BYTES} bytes`, "model");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new AddedModelError("the model entry is not JSON", "model");
  }
  const parsed = modelSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join(".") || "model";
    throw new AddedModelError(`${where}: ${issue.message}`, String(issue.path[0] ?? "model"));
  }
  const model = parsed.data;
  if (model.name.length > MAX_ADDED_MODEL_NAME_CHARS) throw new AddedModelError(`name must be at most ${MAX_ADDED_MODEL_NAME_CHARS} characters`, "name");
  if (model.tokenizer !== undefined && !path.isAbsolute(model.tokenizer)) throw new AddedModelError("tokenizer must be an absolute path", "tokenizer");
  for (const backend of model.backends) {
    if (backend.addresses !== undefined) {
      throw new AddedModelError("an added model's backends carry no addresses (the launcher or the shards' announcements supply them)", "backends");
    }
    if (backend.replicas > MAX_ADDED_MODEL_REPLICAS) throw new AddedModelError(`replicas must be 1-${MAX_ADDED_MODEL_REPLICAS}`, "replicas");
    if (backend.engine === "llama.cpp") {
      if (!path.isAbsolute(backend.model) || !/\.gguf$/i.test(backend.model)) {
        throw new AddedModelError("model must be an absolute path to a .gguf file", "model");
      }
    } else if (backend.engine === "openai-upstream") {
      if (!/^https?:\/\//i.test(backend.url)) throw new AddedModelError("upstream must be an http:// or https:// URL", "upstream");
      if (backend.api_key !== undefined) throw new AddedModelError("an added upstream takes no api_key in the entry (use api_key_env)", "upstream");
    } else {
      throw new AddedModelError(`engine "${backend.engine}" cannot be added at run time (llama.cpp or openai-upstream)`, "backends");
    }
  }
  return model;
}

/**
 * Checks the files an added model names on this machine: every GGUF must
 * exist, be a regular file and start with the GGUF magic; a tokenizer file
 * must exist and be a regular file.
 */
export async function checkAddedModelFiles(model: CatalogModel): Promise<void> {
  if (model.tokenizer) await checkFile(model.tokenizer, "tokenizer", model.tokenizer.toLowerCase().endsWith(".gguf"));
  for (const backend of model.backends) if (backend.engine === "llama.cpp") await checkFile(backend.model, "model", true);
}

async function checkFile(file: string, param: string, gguf: boolean): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new AddedModelError(`${param}: no such file: ${file}`, param);
  if (!info.isFile()) throw new AddedModelError(`${param}: not a regular file: ${file}`, param);
  if (!gguf) return;
  const handle = await open(file, "r");
  try {
    const magic = Buffer.alloc(4);
    await handle.read(magic, 0, 4, 0);
    if (magic.toString("latin1") !== GGUF_MAGIC) throw new AddedModelError(`${param}: not a GGUF file: ${file}`, param);
  } finally {
    await handle.close();
  }
}
