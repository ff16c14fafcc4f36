import type { IncomingMessage, ServerResponse } from "node:http";
import FindMyWay from "find-my-way";
import type { Client } from "@connectrpc/connect";
import type { RouterService } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { Principal } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { checkHealth } from "../../../lib/rpc/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ChatCompletions } from "./openai/chat-completions.js";
import type { Completions } from "./openai/completions.js";
import type { RequestContext } from "./openai/generation.js";
import { hidesDetail, HttpError, sendError, toHttpError } from "./openai/errors.js";
import type { PrincipalCache } from "./principal-cache.js";
import { ADMIN_PREFIX, ADMIN_ROUTES } from "./admin/admin-api.js";
import type { AdminApi } from "./admin/admin-api.js";
import { EXPERIMENT_ROUTES, EXPERIMENTS_PREFIX, FEEDBACK_PATH, forcedBackend } from "./experiments/experiments-api.js";
import type { ExperimentsApi } from "./experiments/experiments-api.js";
import { serveMetrics } from "../../../lib/metrics/index.js";
import { EdgeMetrics } from "./edge-metrics.js";
import { logAccess } from "./access-log.js";
import type { AccessRecord } from "./generation-telemetry.js";
import { authenticateBearer } from "./bearer-auth.js";
import { modelsFor } from "./model-list.js";
import { CLIENT_REQUEST_ID_HEADER, clientRequestIdOf, decodeUtf8, newRequestId, sendJson } from "./request-parsing.js";

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const HEALTH_CHECK_TIMEOUT_MS = 500;
/** A client's own deadline for one request (capped by the edge's). */
const TIMEOUT_HEADER = "x-mesh-timeout-ms";
/** Path segments this long may be secrets (keys are ~60 characters, ids ≤ 24): access lines cut them. */
const LONG_SEGMENT = /\/[^/]{32,}/g;
/** Longest URL path routed; longer ones are 414. */
const MAX_PATH_CHARS = 2_048;
/** `.` or `..` as a path segment, raw or percent-encoded, and encoded slashes: never routed. */
const UNSAFE_PATH = /(^|\/)(\.|%2e){1,2}(\/|$)|%2f|%5c|\\/i;

export interface EdgeDeps {
  router: Client<typeof RouterService>;
  principals: PrincipalCache;
  chat: ChatCompletions;
  completions: Completions;
  /** More OpenAI POST endpoints by path (/v1/responses, /v1/embeddings). */
  apis?: Record<string, Pick<ChatCompletions, "handle">>;
  /** Services /healthz checks, by name → address. */
  healthTargets: Record<string, string>;
  /** The admin REST API under /admin/v1/ (absent: 404). */
  admin?: AdminApi;
  /** POST /v1/feedback and /admin/v1/experiments (absent: 404). */
  experiments?: ExperimentsApi;
  /** Everything under /console: the account console (absent: 404). */
  console?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  log: Logger;
  /** The registry /metrics serves (default: a fresh one). */
  metrics?: EdgeMetrics;
  /** How long a stream waits for its client to read before it is cut off (MESH_HTTP_STREAM_STALL_MS). */
  streamStallMs?: number;
}

/** What every route handler gets: the request's id, its abort signal and the parsed URL. */
export interface RouteContext {
  requestId: string;
  clientRequestId: string | undefined;
  startedAt: number;
  signal: AbortSignal;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  /** What a generation adds to the request's access line. */
  access: AccessRecord;
}

type Handler = (req: IncomingMessage, res: ServerResponse, rc: RouteContext) => Promise<void>;

/**
 * The edge's HTTP surface beside connect-node's RPC handler: the OpenAI
 * REST routes, /healthz and /metrics, the admin and experiment JSON APIs,
 * all in one find-my-way table. Each request gets a mesh-generated id, its
 * abort signal tied to the client's socket, one set of response headers, and
 * errors as OpenAI error JSON.
 */
export class EdgeHttpApi {
  /** Served at GET /metrics on the edge's own port. */
  readonly metrics: EdgeMetrics;
  readonly #routes = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 256 });

  constructor(private readonly deps: EdgeDeps) {
    this.metrics = deps.metrics ?? new EdgeMetrics();
    // Each route carries its metrics label (its own path, or its API's prefix for the admin tables): one list, bounded.
    const add = (methods: string[], path: string, handler: Handler, label = path): void =>
      void this.#routes.on(methods as FindMyWay.HTTPMethod[], path, handler as unknown as FindMyWay.Handler<FindMyWay.HTTPVersion.V1>, { label });
    const on = (methods: string[], path: string, handler: Handler): void => {
      add(methods, path, handler);
      const others = ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !methods.includes(m));
      const refuse: Handler = async () => {
        throw new HttpError(405, `Use ${methods.join(" or ")} for ${path}`, "invalid_request_error", null, "method_not_allowed", { allow: methods.join(", ") });
      };
      if (!path.includes(":")) add(others, path, refuse);
    };
    on(["GET"], "/healthz", (_req, res) => this.#healthz(res));
    on(["GET"], "/metrics", async (req, res) => void (await serveMetrics(this.metrics.registry, req, res)));
    on(["GET"], "/v1/models", async (req, res, rc) => this.#listModels(res, await this.#authenticate(req, rc.signal)));
    on(["POST"], "/v1/chat/completions", (req, res, rc) => this.#generate(req, res, rc, this.deps.chat));
    on(["POST"], "/v1/completions", (req, res, rc) => this.#generate(req, res, rc, this.deps.completions));
    for (const [path, api] of Object.entries(deps.apis ?? {})) on(["POST"], path, (req, res, rc) => this.#generate(req, res, rc, api));
    const { experiments, admin } = deps;
    if (experiments) {
      on(["POST"], FEEDBACK_PATH, async (req, res, rc) => experiments.feedback(req, res, await this.#authenticate(req, rc.signal)));
      for (const [method, path, route] of EXPERIMENT_ROUTES) add([method], path, (req, res, rc) => experiments.admin(req, res, route, rc), EXPERIMENTS_PREFIX);
    }
    if (deps.console) {
      const page = deps.console;
      for (const path of ["/console", "/console/*"]) add(["GET", "POST", "PUT", "PATCH", "DELETE"], path, (req, res) => page(req, res), "/console");
    }
    if (admin) {
      for (const [method, path, route] of ADMIN_ROUTES) add([method], path, (req, res, rc) => admin.handle(req, res, route, rc), ADMIN_PREFIX);
    }
  }

  /** The Node.js request listener for HTTP/1.1 and h2c alike. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#handle(req, res);
  };

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const requestId = newRequestId();
    const clientRequestId = clientRequestIdOf((name) => header(req, name));
    res.setHeader("x-request-id", requestId);
    if (clientRequestId) res.setHeader(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    const abort = new AbortController();
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    let route = "other";
    const access: AccessRecord = {};
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
      this.metrics.record(route, res.statusCode, startedAt);
      // An unmatched path is the client's own text (a key pasted into a URL, say): never logged; long segments of a matched one are cut.
      logAccess(
        this.deps.log,
        req.method ?? "",
        route === "other" ? "(unmatched)" : path.replace(LONG_SEGMENT, "/…"),
        res.statusCode,
        startedAt,
        requestId,
        access,
      );
    });
    try {
      if (path.length > MAX_PATH_CHARS) throw new HttpError(414, "URL too long", "invalid_request_error", null, "invalid_url");
      if (UNSAFE_PATH.test(path))
        throw new HttpError(400, "Malformed URL: dot segments and encoded slashes are not allowed", "invalid_request_error", null, "invalid_url");
      const found = this.#routes.find(req.method as FindMyWay.HTTPMethod, path);
      if (!found) throw new HttpError(404, `Unknown request URL: ${req.method} ${path}`, "invalid_request_error", null, "unknown_url");
      route = (found.store as { label: string }).label;
      const query = new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1));
      const rc: RouteContext = { requestId, clientRequestId, startedAt, signal: abort.signal, params: found.params, query, access };
      await (found.handler as unknown as Handler)(req, res, rc);
    } catch (err) {
      const error = toHttpError(err, requestId);
      if (error.status >= 500) this.deps.log.error({ requestId, clientRequestId, err }, "request failed");
      else if (hidesDetail(err)) this.deps.log.warn({ requestId, clientRequestId, err: (err as Error).message }, "request ended");
      if (!res.headersSent) sendError(res, error);
      else res.end();
    }
  }

  async #generate(req: IncomingMessage, res: ServerResponse, rc: RouteContext, api: Pick<ChatCompletions, "handle">): Promise<void> {
    const principal = await this.#authenticate(req, rc.signal);
    const body = await readJson(req);
    const headers: Record<string, string> = { "x-request-id": rc.requestId };
    if (rc.clientRequestId) headers[CLIENT_REQUEST_ID_HEADER] = rc.clientRequestId;
    const ctx: RequestContext = {
      requestId: rc.requestId,
      principal,
      startedAt: rc.startedAt,
      signal: rc.signal,
      headers,
      timeoutMs: timeoutOf(req),
      forceBackend: forcedBackend(req, principal),
      requestHeaders: req.headers,
      access: rc.access,
      streamStallMs: this.deps.streamStallMs,
    };
    await api.handle(res, body, ctx);
  }

  #authenticate(req: IncomingMessage, signal: AbortSignal): Promise<Principal> {
    return authenticateBearer(this.deps.principals, req.headers.authorization, signal, "header");
  }

  async #listModels(res: ServerResponse, principal: Principal): Promise<void> {
    const data = (await modelsFor(this.deps.router, principal)).map((m) => ({ id: m.name, object: "model", created: Number(m.created), owned_by: m.ownedBy }));
    sendJson(res, 200, { object: "list", data });
  }

  async #healthz(res: ServerResponse): Promise<void> {
    const entries = Object.entries(this.deps.healthTargets);
    const results = await Promise.all(entries.map(async ([name, address]) => [name, await checkHealth(address, HEALTH_CHECK_TIMEOUT_MS)] as const));
    const failing = results.filter(([, ok]) => !ok).map(([name]) => name);
    const services = Object.fromEntries(results.map(([name, ok]) => [name, ok ? "SERVING" : "NOT_SERVING"]));
    if (failing.length === 0) sendJson(res, 200, { status: "ok", services });
    else
      sendJson(res, 503, {
        status: "unavailable",
        failing,
        services,
        error: { message: `not serving: ${failing.join(", ")}`, type: "server_error", param: null, code: "service_unavailable" },
      });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === "string" ? value : undefined;
}

/** Reads and parses a JSON body: 413 when too large, 400 when not UTF-8 or not JSON. */
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
  const text = decodeUtf8(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      "invalid_request_error",
      null,
      "invalid_json",
    );
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
