import type { CallOptions, Client } from "@connectrpc/connect";
import { z } from "zod";
import type { ModelAdminService, StoredModel } from "../../../../src/gen/mesh/auth/v1/models_pb.js";
import type { ModelInfo, RouterService } from "../../../../src/gen/mesh/router/v1/router_pb.js";
import { AddedModelError, addedModelEntry, MAX_ADDED_MODEL_REPLICAS } from "../../../../lib/catalog/index.js";
import type { CatalogModel } from "../../../../lib/catalog/index.js";
import { HttpError } from "../openai/errors.js";
import { parseBody } from "../request-parsing.js";
import { isoOrNull } from "./admin-json.js";

const addModelBody = z
  .object({
    name: z.string().min(1).max(128),
    model: z.string().min(1).max(4_096).optional(),
    upstream: z.string().min(1).max(4_096).optional(),
    upstream_model: z.string().min(1).max(4_096).optional(),
    upstream_key_env: z.string().min(1).max(128).optional(),
    tokenizer: z.string().min(1).max(4_096).optional(),
    replicas: z.number().int().min(1).max(MAX_ADDED_MODEL_REPLICAS).optional(),
    sequences: z.number().int().min(1).max(256).optional(),
  })
  .strict();

/** A model in admin JSON: where it comes from, its backends, whether this mesh's router serves it now. */
export function modelJson(name: string, source: "catalog" | "added", served: boolean, entry?: CatalogModel, info?: ModelInfo, addedAtMs?: bigint) {
  return {
    id: name,
    object: "model",
    source,
    served,
    backends: entry
      ? entry.backends.map((b) => ({
          name: b.name,
          engine: b.engine,
          replicas: b.replicas,
          ...(b.engine === "llama.cpp" ? { model: b.model, sequences: b.sequences } : {}),
          ...(b.engine === "openai-upstream" ? { url: b.url, upstream_model: b.upstream_model ?? null, upstream_key_env: b.api_key_env ?? null } : {}),
        }))
      : (info?.backends ?? []).map((b) => ({ name: b })),
    ...(entry?.tokenizer ? { tokenizer: entry.tokenizer } : {}),
    added_at: addedAtMs === undefined ? null : isoOrNull(addedAtMs),
  };
}

function entryOf(stored: StoredModel): CatalogModel | undefined {
  try {
    return JSON.parse(stored.entryJson) as CatalogModel;
  } catch {
    return undefined;
  }
}

/**
 * `/admin/v1/models`: the catalog's models (from the router: fixed at start,
 * cannot be removed here) and those added at run time (auth's
 * ModelAdminService, which checks the admin token on every call and the
 * files an added model names).
 *
 *   GET    models                 every model, `source: "catalog" | "added"`
 *   POST   models {name, model | upstream, upstream_model, upstream_key_env, tokenizer, replicas, sequences}
 *   DELETE models/{name}          an added model (a catalog model: 409)
 */
export class ModelsApi {
  constructor(
    private readonly models: Client<typeof ModelAdminService>,
    private readonly router: Client<typeof RouterService>,
  ) {}

  async list(call: CallOptions) {
    // Auth first: it checks the admin token.
    const { models: stored } = await this.models.listModels({}, call);
    const { models: routed } = await this.router.listModels({}, { timeoutMs: call.timeoutMs });
    const served = new Map(routed.map((m) => [m.name, m] as const));
    const data = routed.filter((m) => m.source !== "added").map((m) => modelJson(m.name, "catalog", true, undefined, m));
    for (const s of stored)
      if (served.get(s.name)?.source !== "catalog") data.push(modelJson(s.name, "added", served.has(s.name), entryOf(s), undefined, s.addedAtMs));
    return { object: "list", data };
  }

  async add(body: unknown, call: CallOptions) {
    await this.models.listModels({}, call);
    const spec = parseBody(addModelBody, body);
    await this.#refuseCatalogModel(spec.name, call, "add");
    let entryJson: string;
    try {
      entryJson = JSON.stringify(
        addedModelEntry({
          name: spec.name,
          model: spec.model,
          upstream: spec.upstream,
          upstreamModel: spec.upstream_model,
          upstreamKeyEnv: spec.upstream_key_env,
          tokenizer: spec.tokenizer,
          replicas: spec.replicas,
          sequences: spec.sequences,
        }),
      );
    } catch (err) {
      if (err instanceof AddedModelError) throw new HttpError(400, err.message, "invalid_request_error", err.param, "invalid_value");
      throw err;
    }
    const { model } = await this.models.addModel({ entryJson }, call);
    return modelJson(model!.name, "added", false, entryOf(model!), undefined, model!.addedAtMs);
  }

  async remove(name: string, call: CallOptions) {
    await this.models.listModels({}, call);
    await this.#refuseCatalogModel(name, call, "remove");
    const { model } = await this.models.removeModel({ name }, call);
    return { id: model!.name, object: "model", source: "added", deleted: true };
  }

  async #refuseCatalogModel(name: string, call: CallOptions, what: "add" | "remove"): Promise<void> {
    const { models } = await this.router.listModels({}, { timeoutMs: call.timeoutMs });
    if (!models.some((m) => m.name === name && m.source !== "added")) return;
    const message =
      what === "add"
        ? `The model \`${name}\` is in the catalog file; choose another name`
        : `The model \`${name}\` comes from the catalog file: remove it there and restart the mesh (only models added at run time can be removed here)`;
    throw new HttpError(409, message, "invalid_request_error", "name", what === "add" ? "model_exists" : "catalog_model");
  }
}
