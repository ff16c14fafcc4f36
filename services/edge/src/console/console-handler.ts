import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { KeyAdminService } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { decodeConsoleToken, DEFAULT_CONSOLE_TOKEN_TTL_MS } from "../../../auth/src/console-token.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import { usageJson } from "../admin/admin-json.js";
import { HttpError, sendError, toHttpError } from "../openai/errors.js";
import { decodeUtf8, sendJson } from "../request-parsing.js";
import { clearedCookie, csrfMatches, csrfTokenOf, isSameOrigin, sessionCookie, sessionToken } from "./session.js";
import { loadAssets } from "./static-assets.js";
import type { StaticAsset } from "./static-assets.js";
import { usageChartSvg, windowStartMs } from "./usage-charts.js";
import type { AdminRoutes } from "./admin-routes.js";

/** Where the console lives on the edge. */
export const CONSOLE_PREFIX = "/console";
/** The page's calls to the admin API: /console/api/X is /admin/v1/X with the session's token. */
const API_PREFIX = `${CONSOLE_PREFIX}/api/`;
const ADMIN_PATH_PREFIX = "/admin/v1/";
const CALL_TIMEOUT_MS = 5_000;
/** Largest sign-in form body, in bytes (a token and a few field names). */
const MAX_SIGNIN_BYTES = 4_096;
/** Admin tokens as auth issues them. */
const ADMIN_TOKEN_PATTERN = /^mesh-admin-[A-Za-z0-9_-]{43}$/;

/**
 * Every console response: scripts, styles, images and calls from this
 * origin only; no inline script or style; never framed; forms post here only.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  // Not "no-referrer": with it Chromium sends `Origin: null` on the sign-in form's POST, and the origin check refuses it.
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

/** What the console needs. */
export interface ConsoleDeps {
  /** Auth's admin service: signs an admin in (IssueConsoleToken), checks a console token, reads usage for charts. */
  keyAdmin: Client<typeof KeyAdminService>;
  /** The same handler that serves /admin/v1/… to the CLI and to scripts. */
  adminRoutes: AdminRoutes;
  log: Logger;
  /** Asset files by name (default: the committed ones under console/assets). */
  assets?: Map<string, StaticAsset>;
  now?: () => number;
}

/**
 * The account console at /console/: a static page whose every action is a
 * call to the admin JSON API, made with the session's console token.
 *
 *   GET    /console/                       the page (and /console/assets/*)
 *   POST   /console/session                sign in (form or JSON: token) → session cookie
 *   GET    /console/session                who is signed in, and the CSRF token for writes
 *   DELETE /console/session                sign out
 *   *      /console/api/…                  /admin/v1/… as the signed-in account or admin
 *   GET    /console/charts/usage.svg?by=day|model&metric=requests|tokens[&account=A]
 */
export class ConsoleHandler {
  readonly #assets: Map<string, StaticAsset>;
  readonly #now: () => number;

  constructor(private readonly deps: ConsoleDeps) {
    this.#assets = deps.assets ?? loadAssets();
    this.#now = deps.now ?? Date.now;
  }

  /** The one entry point the edge mounts for every path under /console. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = new URL(req.url ?? "/", "http://edge");
    const path = url.pathname;
    try {
      if (path === CONSOLE_PREFIX) return redirect(res, `${CONSOLE_PREFIX}/`);
      if (path === `${CONSOLE_PREFIX}/session`) return await this.#session(req, res);
      if (path.startsWith(API_PREFIX)) return await this.#api(req, res, url);
      if (path === `${CONSOLE_PREFIX}/charts/usage.svg`) return await this.#chart(req, res, url);
      if (req.method === "GET" || req.method === "HEAD") {
        const name =
          path === `${CONSOLE_PREFIX}/`
            ? "index.html"
            : path.startsWith(`${CONSOLE_PREFIX}/assets/`)
              ? path.slice(`${CONSOLE_PREFIX}/assets/`.length)
              : undefined;
        const asset = name === undefined ? undefined : this.#assets.get(name);
        if (asset) {
          res.writeHead(200, { "content-type": asset.contentType, "content-length": asset.body.length });
          return void res.end(req.method === "HEAD" ? undefined : asset.body);
        }
      }
      throw new HttpError(404, `Unknown console URL: ${req.method} ${path}`, "invalid_request_error", null, "unknown_url");
    } catch (err) {
      const error = toHttpError(err, "console");
      if (error.status >= 500) this.deps.log.error({ err, path }, "console request failed");
      sendError(res, error);
    }
  };

  async #session(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === "GET") {
      const token = sessionToken(req);
      const claims = token ? decodeConsoleToken(token) : undefined;
      if (!token || !claims || claims.expiresAtMs <= this.#now()) return sendJson(res, 200, { signed_in: false });
      return sendJson(res, 200, {
        signed_in: true,
        role: claims.account ? "account" : "admin",
        account: claims.account || null,
        expires_at: new Date(claims.expiresAtMs).toISOString(),
        csrf_token: csrfTokenOf(token),
      });
    }
    if (req.method === "DELETE") {
      const token = sessionToken(req);
      if (token) this.#requireWriteAllowed(req, token);
      res.setHeader("set-cookie", clearedCookie(req));
      return sendJson(res, 200, { signed_in: false });
    }
    if (req.method !== "POST")
      throw new HttpError(405, "Use GET, POST or DELETE for /console/session", "invalid_request_error", null, "method_not_allowed", {
        allow: "GET, POST, DELETE",
      });
    if (!isSameOrigin(req)) throw forbidden("Sign-in must come from the console's own page.");
    const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
    const presented = await signInToken(req, isForm);
    try {
      const session = await this.#openSession(presented);
      res.setHeader("set-cookie", sessionCookie(req, session.token, session.expiresAtMs, this.#now()));
      if (isForm) return redirect(res, `${CONSOLE_PREFIX}/`, 303);
      return sendJson(res, 200, { signed_in: true, role: session.account ? "account" : "admin", account: session.account || null });
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 401) throw err;
      if (isForm) return redirect(res, `${CONSOLE_PREFIX}/?signin=failed`, 303);
      throw err;
    }
  }

  /** An admin token becomes a fresh admin console token (the admin token never sits in a cookie); a console token is checked by auth and kept. */
  async #openSession(token: string): Promise<{ token: string; account: string; expiresAtMs: number }> {
    const call = { headers: { authorization: `Bearer ${token}` }, timeoutMs: CALL_TIMEOUT_MS };
    try {
      if (ADMIN_TOKEN_PATTERN.test(token)) {
        const issued = await this.deps.keyAdmin.issueConsoleToken({ accountId: "", ttlMs: BigInt(DEFAULT_CONSOLE_TOKEN_TTL_MS) }, call);
        return { token: issued.token, account: "", expiresAtMs: Number(issued.expiresAtMs) };
      }
      const claims = decodeConsoleToken(token);
      if (!claims) throw badToken();
      await this.deps.keyAdmin.listAccounts({}, call);
      return { token, account: claims.account, expiresAtMs: claims.expiresAtMs };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated || code === Code.PermissionDenied) throw badToken();
      throw err;
    }
  }

  /** /console/api/X → the admin API's /admin/v1/X, authorised by the session's token. */
  async #api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const token = this.#requireSession(req);
    if (req.method !== "GET" && req.method !== "HEAD") this.#requireWriteAllowed(req, token);
    const target = new URL(`${ADMIN_PATH_PREFIX}${url.pathname.slice(API_PREFIX.length)}${url.search}`, "http://edge");
    // The admin API reads its credential from the Authorization header: the session's token takes its place.
    req.headers.authorization = `Bearer ${token}`;
    await this.deps.adminRoutes(req, res, target);
  }

  async #chart(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const token = this.#requireSession(req);
    const by = url.searchParams.get("by") ?? "day";
    const metric = url.searchParams.get("metric") ?? "requests";
    if (by !== "day" && by !== "model") throw new HttpError(400, "by must be day or model", "invalid_request_error", "by", "invalid_value");
    if (metric !== "requests" && metric !== "tokens")
      throw new HttpError(400, "metric must be requests or tokens", "invalid_request_error", "metric", "invalid_value");
    const now = this.#now();
    const { rows } = await this.deps.keyAdmin.getUsage(
      { accountId: url.searchParams.get("account") ?? "", fromMs: BigInt(windowStartMs(now)), groupBy: by },
      { headers: { authorization: `Bearer ${token}` }, timeoutMs: CALL_TIMEOUT_MS },
    );
    const svg = usageChartSvg(by, metric, rows.map(usageJson), now);
    res.writeHead(200, { "content-type": "image/svg+xml", "content-length": Buffer.byteLength(svg) });
    res.end(svg);
  }

  #requireSession(req: IncomingMessage): string {
    const token = sessionToken(req);
    const claims = token ? decodeConsoleToken(token) : undefined;
    if (!token || !claims || claims.expiresAtMs <= this.#now()) {
      throw new HttpError(401, "Not signed in to the console (or the session expired).", "invalid_request_error", null, "console_session_required");
    }
    return token;
  }

  /** A write needs the session's CSRF token and our own origin. */
  #requireWriteAllowed(req: IncomingMessage, token: string): void {
    if (!isSameOrigin(req) || !csrfMatches(req, token)) throw forbidden("This console action needs the page's CSRF token.");
  }
}

/** The token from the sign-in body: a form field `token`, or JSON `{token}`. */
async function signInToken(req: IncomingMessage, isForm: boolean): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_SIGNIN_BYTES) throw new HttpError(413, "Sign-in body too large.", "invalid_request_error", null, "request_too_large");
    chunks.push(chunk);
  }
  const text = decodeUtf8(Buffer.concat(chunks));
  let token: unknown;
  if (isForm) token = new URLSearchParams(text).get("token");
  else {
    try {
      token = (JSON.parse(text) as { token?: unknown }).token;
    } catch {
      token = undefined;
    }
  }
  if (typeof token !== "string" || !token.trim()) throw new HttpError(400, "Sign-in needs a token.", "invalid_request_error", "token", "missing_token");
  return token.trim();
}

function badToken(): HttpError {
  return new HttpError(
    401,
    "That token is not valid: use the admin token or one from `llm-mesh console-token`.",
    "invalid_request_error",
    "token",
    "invalid_console_token",
  );
}

function forbidden(message: string): HttpError {
  return new HttpError(403, message, "invalid_request_error", null, "csrf_check_failed");
}

function redirect(res: ServerResponse, location: string, status = 308): void {
  res.writeHead(status, { location, "content-length": 0 });
  res.end();
}
