import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@connectrpc/connect";
import type { RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { Principal } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { checkHealth } from "../../../lib/rpc/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ChatCompletions } from "./openai/chat-completions.js";
import type { Completions } from "./openai/completions.js";
import { mayUse } from "./openai/generation.js";
import type { RequestContext } from "./openai/generation.js";
import { HttpError, sendError, toHttpError } from "./openai/errors.js";
import type { PrincipalCache } from "./principal-cache.js";
import { ADMIN_PREFIX } from "./admin/admin-api.js";
import type { AdminApi } from "./admin/admin-api.js";
import { EXPERIMENTS_PREFIX, FEEDBACK_PATH, forcedBackend } from "./experiments/experiments-api.js";
import type { ExperimentsApi } from "./experiments/experiments-api.js";
import { serveMetrics } from "../../../lib/metrics/index.js";
import { EdgeMetrics } from "./edge-metrics.js";
import { bearerToken, requestIdOf, sendJson } from "./request-parsing.js";

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const HEALTH_CHECK_TIMEOUT_MS = 500;
/** A client's own deadline for one request (capped by the edge's). */
const TIMEOUT_HEADER = "x-mesh-timeout-ms";

export interface EdgeDeps {
  router: Client<typeof RouterService>;
  principals: PrincipalCache;
  chat: ChatCompletions;
  completions: Completions;
  /** Services /healthz checks, by name → address. */
  healthTargets: Record<string, string>;
  /** The admin REST API under /admin/v1/ (absent: 404). */
  admin?: AdminApi;
  /** POST /v1/feedback and /admin/v1/experiments (absent: 404). */
  experiments?: ExperimentsApi;
  log: Logger;
}

/** The OpenAI REST surface: routing, auth, body parsing, errors. */
export class EdgeService {
  /** Served at GET /metrics on the edge's own port. */
  readonly metrics = new EdgeMetrics();

  constructor(private readonly deps: EdgeDeps) {}

  /** The Node.js request listener for HTTP/1.1 and h2c alike. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#handle(req, res);
  };

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const clientId = req.headers["x-request-id"];
    const requestId = requestIdOf(typeof clientId === "string" ? clientId : undefined);
    res.setHeader("x-request-id", requestId);
    const abort = new AbortController();
    const path = (req.url ?? "/").split("?")[0]!;
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
      this.metrics.record(path, res.statusCode, startedAt);
    });
    try {
      if (req.method === "GET" && path === "/healthz") return await this.#healthz(res);
      if (req.method === "GET" && path === "/metrics") return void (await serveMetrics(this.metrics.registry, req, res));
      if (this.deps.experiments && (path === EXPERIMENTS_PREFIX || path.startsWith(`${EXPERIMENTS_PREFIX}/`))) {
        return await this.deps.experiments.admin(req, res, new URL(req.url ?? "/", "http://edge"));
      }
      if (this.deps.experiments && path === FEEDBACK_PATH) return await this.deps.experiments.feedback(req, res, await this.#authenticate(req, abort.signal));
      if (path.startsWith(ADMIN_PREFIX) && this.deps.admin) return await this.deps.admin.handle(req, res, new URL(req.url ?? "/", "http://edge"));
      if (req.method === "GET" && path === "/v1/models") {
        const principal = await this.#authenticate(req, abort.signal);
        return await this.#listModels(res, principal);
      }
      if (path === "/v1/chat/completions" || path === "/v1/completions") {
        if (req.method !== "POST") throw new HttpError(405, `Use POST for ${path}`, "invalid_request_error", null, "method_not_allowed", { allow: "POST" });
        const principal = await this.#authenticate(req, abort.signal);
        const body = await readJson(req);
        const ctx: RequestContext = { requestId, principal, startedAt, signal: abort.signal, headers: { "x-request-id": requestId }, timeoutMs: timeoutOf(req), forceBackend: forcedBackend(req, principal) };
        const api = path === "/v1/completions" ? this.deps.completions : this.deps.chat;
        return await api.handle(res, body, ctx);
      }
      throw new HttpError(404, `Unknown request URL: ${req.method} ${path}`, "invalid_request_error", null, "unknown_url");
    } catch (err) {
      const error = toHttpError(err, requestId);
      if (error.status >= 500) this.deps.log.error({ requestId, err }, "request failed");
      if (!res.headersSent) sendError(res, error);
      else res.end();
    }
  }

  async #authenticate(req: IncomingMessage, signal: AbortSignal): Promise<Principal> {
    const header = req.headers.authorization;
    if (!header) {
      throw new HttpError(401, "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'.", "invalid_request_error", null, "invalid_api_key");
    }
    const key = bearerToken(header);
    if (!key) throw new HttpError(401, "Malformed Authorization header: expected 'Bearer YOUR_KEY'.", "invalid_request_error", null, "invalid_api_key");
    return this.deps.principals.authenticate(key, signal);
  }

  async #listModels(res: ServerResponse, principal: Principal): Promise<void> {
    const { models } = await this.deps.router.listModels({}, { timeoutMs: 2_000 });
    const data = models
      .filter((m) => mayUse(principal, m.name))
      .map((m) => ({ id: m.name, object: "model", created: Number(m.created), owned_by: m.ownedBy }));
    sendJson(res, 200, { object: "list", data });
  }

  async #healthz(res: ServerResponse): Promise<void> {
    const entries = Object.entries(this.deps.healthTargets);
    const results = await Promise.all(entries.map(async ([name, address]) => [name, await checkHealth(address, HEALTH_CHECK_TIMEOUT_MS)] as const));
    const failing = results.filter(([, ok]) => !ok).map(([name]) => name);
    const services = Object.fromEntries(results.map(([name, ok]) => [name, ok ? "SERVING" : "NOT_SERVING"]));
    if (failing.length === 0) sendJson(res, 200, { status: "ok", services });
    else sendJson(res, 503, { status: "unavailable", failing, services, error: { message: `not serving: ${failing.join(", ")}`, type: "server_error", param: null, code: "service_unavailable" } });
  }
}

/** Reads and parses a JSON body: 413 when too large, 400 when not JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)", "invalid_request_error", null, "invalid_json");
  }
}

/** The client's `x-mesh-timeout-ms`, when a positive integer. */
function timeoutOf(req: IncomingMessage): number | undefined {
  const value = Number(req.headers[TIMEOUT_HEADER]);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function tooLarge(): HttpError {
  return new HttpError(413, `Request body too large: the limit is ${MAX_BODY_BYTES} bytes.`, "invalid_request_error", null, "request_too_large");
}
