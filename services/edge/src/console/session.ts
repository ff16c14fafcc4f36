import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { isConsoleToken } from "../../../auth/src/console-token.js";

/** The console's session cookie: holds a signed console token, never the admin token. */
export const SESSION_COOKIE = "mesh_console";
/** Where the cookie is sent: the console only, never the OpenAI or admin API. */
export const COOKIE_PATH = "/console";
/** The header that carries the CSRF token on every console write. */
export const CSRF_HEADER = "x-csrf-token";
/** Longest Cookie header looked at. */
const MAX_COOKIE_HEADER_CHARS = 8_192;

/** The session's console token from the request's cookie, if well formed. */
export function sessionToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > MAX_COOKIE_HEADER_CHARS) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return isConsoleToken(value) ? value : undefined;
  }
  return undefined;
}

/** Whether the request reached us over TLS (directly, or through a proxy that says so). */
export function isTls(req: IncomingMessage): boolean {
  return Boolean((req.socket as TLSSocket).encrypted) || req.headers["x-forwarded-proto"] === "https";
}

/** `Set-Cookie` for a session: HttpOnly, SameSite=Strict, Secure when TLS, gone when the token expires. */
export function sessionCookie(req: IncomingMessage, token: string, expiresAtMs: number, nowMs = Date.now()): string {
  const maxAge = Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000));
  return `${SESSION_COOKIE}=${token}; Path=${COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${isTls(req) ? "; Secure" : ""}`;
}

/** `Set-Cookie` that clears the session. */
export function clearedCookie(req: IncomingMessage): string {
  return `${SESSION_COOKIE}=; Path=${COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict${isTls(req) ? "; Secure" : ""}`;
}

/**
 * The session's CSRF token: a hash of the session token, handed to the page
 * by GET /console/session (same-origin only: no CORS) and required back in
 * `x-csrf-token` on every write. A cross-site form cannot set that header
 * and cannot read the value.
 */
export function csrfTokenOf(sessionTokenValue: string): string {
  return createHash("sha256").update("mesh-console-csrf\0").update(sessionTokenValue).digest("base64url");
}

/** Whether a write carries the session's CSRF token. */
export function csrfMatches(req: IncomingMessage, sessionTokenValue: string): boolean {
  const presented = req.headers[CSRF_HEADER];
  if (typeof presented !== "string") return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(csrfTokenOf(sessionTokenValue));
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether the request comes from our own origin: a browser's
 * `Sec-Fetch-Site` and `Origin`, when present, must say so. Tools that
 * send neither (curl) pass; a browser on another site never does.
 */
export function isSameOrigin(req: IncomingMessage): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
