import type { IncomingMessage, ServerResponse } from "node:http";
import type { CallOptions, Client } from "@connectrpc/connect";
import { z } from "zod";
import type { KeyAdminService } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { HttpError } from "../openai/errors.js";
import { accountJson, isoOrNull, keyJson, usageJson } from "./admin-json.js";
import type { HTTPMethod } from "find-my-way";
import { parseBody, sendJson } from "../request-parsing.js";
import { managementTokenOf } from "./admin-token-check.js";
import type { ModelsApi } from "./models-api.js";

/** Where the admin REST API lives on the edge. */
export const ADMIN_PREFIX = "/admin/v1/";
const ADMIN_TIMEOUT_MS = 5_000;
const NO_STORE = { "cache-control": "no-store" };

const createAccountBody = z.object({ id: z.string().min(1).max(64), name: z.string().max(200).optional() });
const retentionBody = z.object({ retention: z.boolean() });
const createKeyBody = z.object({
  account: z.string().max(64).optional(),
  name: z.string().max(200).optional(),
  models: z.array(z.string().min(1).max(200)).max(256).optional(),
  rpm: z.number().int().min(0).max(4_294_967_295).optional(),
  tpm: z.number().int().min(0).max(4_294_967_295).optional(),
  /** Requests of the key in flight at once; 0 = unlimited. */
  max_concurrent: z.number().int().min(0).max(4_294_967_295).optional(),
  /** Lifetime in milliseconds. */
  expires_in_ms: z.number().int().min(0).optional(),
  admin: z.boolean().optional(),
});
const rotateBody = z.object({ grace_ms: z.number().int().min(0).optional() });
const consoleTokenBody = z.object({ account: z.string().max(64).optional(), ttl_ms: z.number().int().min(0).optional() });

/** The admin routes (method, path, the handler's case). */
export const ADMIN_ROUTES: ReadonlyArray<readonly [HTTPMethod, string, string]> = [
  ["GET", "/admin/v1/accounts", "GET accounts"],
  ["POST", "/admin/v1/accounts", "POST accounts"],
  ["PATCH", "/admin/v1/accounts/:id", "PATCH accounts/:id"],
  ["GET", "/admin/v1/keys", "GET keys"],
  ["POST", "/admin/v1/keys", "POST keys"],
  ["POST", "/admin/v1/keys/:id/revoke", "POST keys/:id/revoke"],
  ["DELETE", "/admin/v1/keys/:id", "DELETE keys/:id"],
  ["POST", "/admin/v1/keys/:id/rotate", "POST keys/:id/rotate"],
  ["GET", "/admin/v1/usage", "GET usage"],
  ["POST", "/admin/v1/console-tokens", "POST console-tokens"],
  ["GET", "/admin/v1/models", "GET models"],
  ["POST", "/admin/v1/models", "POST models"],
  // A model name may hold "/" (org/model): the rest of the path is the name.
  ["DELETE", "/admin/v1/models/*", "DELETE models/*"],
];

/** Reads a JSON request body. */
export type ReadJson = (req: IncomingMessage) => Promise<unknown>;

/**
 * The admin REST API (`/admin/v1/...`, JSON), a thin face over auth's
 * KeyAdminService: the admin token travels on to auth, which checks it;
 * anything that is not an admin token or a console token (an API key,
 * nothing) is refused here without being forwarded. A console token is
 * scoped by auth to its account: the same routes answer for that account only.
 *
 *   GET  accounts                  POST accounts {id, name}
 *   PATCH accounts/{id} {retention: bool}
 *   GET  keys?account=A            POST keys {account, name, models, rpm, tpm, expires_in_ms}
 *   POST keys/{id}/revoke          DELETE keys/{id}
 *   POST keys/{id}/rotate {grace_ms}
 *   GET  usage?account=A&from=DATE&to=DATE&by=day|model|key
 *   POST console-tokens {account, ttl_ms}   (admin token only)
 *   GET  models   POST models {name, model | upstream, ...}   DELETE models/{name}   (models-api.ts)
 */
export class AdminApi {
  constructor(
    private readonly admin: Client<typeof KeyAdminService>,
    private readonly readJson: ReadJson,
    /** /admin/v1/models (absent: 404). */
    private readonly models?: ModelsApi,
  ) {}

  /** One admin route (routed by the edge's table: `route` is its case in ADMIN_ROUTES). */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    route: string,
    rc: { params: Record<string, string | undefined>; query: URLSearchParams },
  ): Promise<void> {
    const call: CallOptions = { headers: { authorization: `Bearer ${managementTokenOf(req)}` }, timeoutMs: ADMIN_TIMEOUT_MS };
    const id = rc.params.id ?? "";
    const q = rc.query;
    switch (route) {
      case "GET accounts": {
        const { accounts } = await this.admin.listAccounts({}, call);
        return send(res, 200, { object: "list", data: accounts.map(accountJson) });
      }
      case "POST accounts": {
        const body = parseBody(createAccountBody, await this.#body(req));
        const { account } = await this.admin.createAccount({ id: body.id, name: body.name ?? "" }, call);
        return send(res, 201, accountJson(account!));
      }
      case "PATCH accounts/:id": {
        const body = parseBody(retentionBody, await this.#body(req));
        const { account } = await this.admin.setAccountRetention({ id, retention: body.retention }, call);
        return send(res, 200, accountJson(account!));
      }
      case "GET keys": {
        const { keys } = await this.admin.listKeys({ accountId: q.get("account") ?? "" }, call);
        return send(res, 200, { object: "list", data: keys.map(keyJson) });
      }
      case "POST keys": {
        const body = parseBody(createKeyBody, await this.#body(req));
        const created = await this.admin.createKey(
          {
            accountId: body.account ?? "",
            name: body.name ?? "",
            allowedModels: body.models ?? [],
            limits: { requestsPerMinute: body.rpm ?? 0, tokensPerMinute: body.tpm ?? 0, maxConcurrent: body.max_concurrent ?? 0 },
            ttlMs: BigInt(body.expires_in_ms ?? 0),
            admin: body.admin ?? false,
          },
          call,
        );
        return send(res, 201, { ...keyJson(created.keyInfo!), key: created.apiKey });
      }
      case "POST keys/:id/revoke":
      case "DELETE keys/:id": {
        const { keyInfo } = await this.admin.revokeKey({ id }, call);
        return send(res, 200, keyJson(keyInfo!));
      }
      case "POST keys/:id/rotate": {
        const body = parseBody(rotateBody, await this.#body(req));
        const rotated = await this.admin.rotateKey({ id, graceMs: BigInt(body.grace_ms ?? 0) }, call);
        return send(res, 200, { ...keyJson(rotated.keyInfo!), key: rotated.apiKey });
      }
      case "GET usage": {
        const by = q.get("by") ?? "day";
        const { rows } = await this.admin.getUsage(
          { accountId: q.get("account") ?? "", fromMs: BigInt(timeParam(q.get("from"), "from")), toMs: BigInt(timeParam(q.get("to"), "to")), groupBy: by },
          call,
        );
        return send(res, 200, { object: "list", group_by: by, data: rows.map(usageJson) });
      }
      case "POST console-tokens": {
        const body = parseBody(consoleTokenBody, await this.#body(req));
        const issued = await this.admin.issueConsoleToken({ accountId: body.account ?? "", ttlMs: BigInt(body.ttl_ms ?? 0) }, call);
        return send(res, 201, { object: "console_token", token: issued.token, account: issued.accountId || null, expires_at: isoOrNull(issued.expiresAtMs) });
      }
      case "GET models":
        return send(res, 200, await this.#models(req).list(call));
      case "POST models": {
        const body = await this.#body(req);
        return send(res, 201, await this.#models(req).add(body, call));
      }
      case "DELETE models/*":
        return send(res, 200, await this.#models(req).remove(rc.params["*"] ?? "", call));
      default:
        throw new HttpError(404, `Unknown admin URL: ${req.method} ${req.url}`, "invalid_request_error", null, "unknown_url");
    }
  }

  #models(req: IncomingMessage): ModelsApi {
    if (!this.models) throw new HttpError(404, `Unknown admin URL: ${req.method} ${req.url}`, "invalid_request_error", null, "unknown_url");
    return this.models;
  }

  /** The JSON body; an empty body reads as `{}`. */
  async #body(req: IncomingMessage): Promise<unknown> {
    const empty = req.headers["content-length"] === "0" || (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined);
    return empty ? {} : this.readJson(req);
  }
}

/** A `from`/`to` query value: a date, an ISO instant or Unix milliseconds; 0 when absent. */
export function timeParam(value: string | null, name: string): number {
  if (!value) return 0;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new HttpError(
      400,
      `Invalid ${name}: expected a date (2025-01-31), an ISO instant or Unix milliseconds`,
      "invalid_request_error",
      name,
      "invalid_value",
    );
  }
  return ms;
}

function send(res: ServerResponse, status: number, value: unknown): void {
  sendJson(res, status, value, NO_STORE);
}
