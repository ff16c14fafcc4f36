import type { Client } from "@connectrpc/connect";
import type { Principal } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { ModelInfo, RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { mayUse } from "./openai/generation.js";

/** Longest /v1/models (REST and gRPC) waits for the router: long enough to ride out a restart of it (the client waits while it reconnects). */
const LIST_MODELS_TIMEOUT_MS = 20_000;

/** The router's models that this principal may use: what `GET /v1/models` and the gRPC `ListModels` both answer. */
export async function modelsFor(router: Client<typeof RouterService>, principal: Principal, signal?: AbortSignal): Promise<ModelInfo[]> {
  const { models } = await router.listModels({}, { signal, timeoutMs: LIST_MODELS_TIMEOUT_MS });
  return models.filter((m) => mayUse(principal, m.name));
}
