import { on } from "node:events";
import { EventEmitter } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AddModelResponseSchema,
  ListModelsResponseSchema,
  RemoveModelResponseSchema,
  StoredModelSchema,
  WatchModelsResponse_Kind as WatchKind,
  WatchModelsResponseSchema,
} from "../../../src/gen/mesh/auth/v1/models_pb.js";
import type {
  AddModelRequest,
  ModelAdminService as ModelAdminServiceDesc,
  RemoveModelRequest,
  StoredModel,
  WatchModelsResponse,
} from "../../../src/gen/mesh/auth/v1/models_pb.js";
import { AddedModelError, checkAddedModelFiles, MAX_ADDED_MODELS, parseAddedModelEntry } from "../../../lib/catalog/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import { adminTokenMatches, bearerToken } from "./admin-token.js";
import type { ModelChange, ModelRecord, ModelStore } from "./store/index.js";

/** Watchers get a heartbeat this often while nothing changes. */
export const MODEL_WATCH_HEARTBEAT_MS = 2_000;

export interface ModelAdminDeps {
  store: ModelStore;
  adminToken: string | undefined;
  now?: () => number;
  heartbeatMs?: number;
}

function storedModelOf(record: ModelRecord): StoredModel {
  return create(StoredModelSchema, { name: record.name, entryJson: record.entryJson, addedAtMs: BigInt(record.addedAtMs) });
}

/**
 * The models added to a running mesh: list, add, remove (admin token) and a
 * watch (routers and launchers, behind the service token) that sends every
 * stored model, then each change. An entry is checked as the catalog file's
 * are, plus the added-model rules (lib/catalog/added-model.ts), and its
 * files are checked on this machine before it is stored.
 */
export class ModelAdminService implements ServiceImpl<typeof ModelAdminServiceDesc> {
  readonly #now: () => number;
  readonly #changes = new EventEmitter();

  constructor(private readonly deps: ModelAdminDeps) {
    this.#now = deps.now ?? Date.now;
    this.#changes.setMaxListeners(0);
    deps.store.onChange((change) => this.#changes.emit("change", change));
  }

  #authorize(ctx: HandlerContext): void {
    if (!adminTokenMatches(bearerToken(ctx.requestHeader.get("authorization")), this.deps.adminToken)) {
      throw meshError(Code.Unauthenticated, "the admin token is required", { reason: "invalid_admin_token" });
    }
  }

  async listModels(_req: unknown, ctx: HandlerContext) {
    this.#authorize(ctx);
    return create(ListModelsResponseSchema, { models: (await this.deps.store.list()).map(storedModelOf) });
  }

  async addModel(req: AddModelRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    let entryJson: string;
    try {
      const model = parseAddedModelEntry(req.entryJson);
      await checkAddedModelFiles(model);
      entryJson = JSON.stringify(model);
    } catch (err) {
      if (err instanceof AddedModelError) throw meshError(Code.InvalidArgument, err.message, { param: err.param, reason: "invalid_model" });
      throw err;
    }
    const name = (JSON.parse(entryJson) as { name: string }).name;
    const stored = await this.deps.store.list();
    if (stored.some((m) => m.name === name)) {
      throw meshError(Code.AlreadyExists, `a model named "${name}" was added already`, { param: "name", reason: "model_exists" });
    }
    if (stored.length >= MAX_ADDED_MODELS) {
      throw meshError(Code.ResourceExhausted, `at most ${MAX_ADDED_MODELS} models can be added`, { reason: "too_many_models" });
    }
    const record = { name, entryJson, addedAtMs: this.#now() };
    if (!(await this.deps.store.add(record))) {
      throw meshError(Code.AlreadyExists, `a model named "${name}" was added already`, { param: "name", reason: "model_exists" });
    }
    return create(AddModelResponseSchema, { model: storedModelOf(record) });
  }

  async removeModel(req: RemoveModelRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const removed = req.name ? await this.deps.store.remove(req.name) : undefined;
    if (!removed) throw meshError(Code.NotFound, `no added model is named "${req.name}"`, { param: "name", reason: "model_not_found" });
    return create(RemoveModelResponseSchema, { model: storedModelOf(removed) });
  }

  async *watchModels(_req: unknown, ctx: HandlerContext): AsyncGenerator<WatchModelsResponse> {
    const local = new EventEmitter();
    const forward = (change: ModelChange | "heartbeat"): boolean => local.emit("change", change);
    // Subscribed before the snapshot is read, so no change falls between the two (a repeat is harmless: watchers apply by name).
    this.#changes.on("change", forward);
    const events = on(local, "change", { signal: ctx.signal }) as AsyncIterableIterator<[ModelChange | "heartbeat"]>;
    const heartbeat = setInterval(() => forward("heartbeat"), this.deps.heartbeatMs ?? MODEL_WATCH_HEARTBEAT_MS);
    try {
      for (const record of await this.deps.store.list()) yield create(WatchModelsResponseSchema, { kind: WatchKind.ADDED, model: storedModelOf(record) });
      yield create(WatchModelsResponseSchema, { kind: WatchKind.SYNCED });
      for await (const [change] of events) {
        if (change === "heartbeat") yield create(WatchModelsResponseSchema, { kind: WatchKind.HEARTBEAT });
        else
          yield create(WatchModelsResponseSchema, { kind: change.kind === "added" ? WatchKind.ADDED : WatchKind.REMOVED, model: storedModelOf(change.record) });
      }
    } catch (err) {
      if (!ctx.signal.aborted) throw err;
    } finally {
      clearInterval(heartbeat);
      this.#changes.off("change", forward);
    }
  }
}
