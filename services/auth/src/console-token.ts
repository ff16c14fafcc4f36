import { createHmac, timingSafeEqual } from "node:crypto";

/** What every console token starts with. */
export const CONSOLE_TOKEN_PREFIX = "mesh-console-";
/** A console token's lifetime when none is asked for. */
export const DEFAULT_CONSOLE_TOKEN_TTL_MS = 12 * 60 * 60 * 1000;
/** The longest lifetime a console token may have. */
export const MAX_CONSOLE_TOKEN_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Longest token accepted for checking (the signature and a short payload fit easily). */
const MAX_TOKEN_CHARS = 512;
const TOKEN_PATTERN = /^mesh-console-([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$/;
/** Domain separation: the signing key is derived from the admin token for this use only. */
const KEY_LABEL = "mesh-console-token-v1";

/** Who a console token acts for. */
export interface ConsoleClaims {
  /** The account; empty for an admin console session. */
  account: string;
  /** Unix milliseconds after which the token is refused. */
  expiresAtMs: number;
}

/**
 * Signs a console token: `mesh-console-<payload>.<HMAC-SHA256>`, both
 * base64url. The key is derived from the operator's admin token, so every
 * auth replica that has the admin token checks it, nothing new is stored,
 * and replacing the admin token ends every console session.
 */
export function signConsoleToken(claims: ConsoleClaims, adminToken: string): string {
  const payload = Buffer.from(JSON.stringify({ a: claims.account, exp: claims.expiresAtMs })).toString("base64url");
  return `${CONSOLE_TOKEN_PREFIX}${payload}.${mac(payload, adminToken)}`;
}

/** The claims of a console token whose signature is good and which has not expired; undefined otherwise. */
export function verifyConsoleToken(token: string, adminToken: string | undefined, nowMs: number): ConsoleClaims | undefined {
  if (!adminToken || token.length > MAX_TOKEN_CHARS) return undefined;
  const match = TOKEN_PATTERN.exec(token);
  if (!match) return undefined;
  const [, payload, signature] = match as unknown as [string, string, string];
  const expected = Buffer.from(mac(payload, adminToken), "base64url");
  const presented = Buffer.from(signature, "base64url");
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined;
  const claims = decodeConsoleToken(token);
  return claims && claims.expiresAtMs > nowMs ? claims : undefined;
}

/**
 * The claims a console token states, WITHOUT checking its signature: for
 * showing who is signed in. Only auth's verifyConsoleToken grants anything.
 */
export function decodeConsoleToken(token: string): ConsoleClaims | undefined {
  const match = TOKEN_PATTERN.exec(token);
  if (!match) return undefined;
  try {
    const value = JSON.parse(Buffer.from(match[1], "base64url").toString("utf8")) as { a?: unknown; exp?: unknown };
    if (typeof value.a !== "string" || typeof value.exp !== "number" || !Number.isSafeInteger(value.exp)) return undefined;
    return { account: value.a, expiresAtMs: value.exp };
  } catch {
    return undefined;
  }
}

/** Whether a string has a console token's shape. */
export function isConsoleToken(value: string): boolean {
  return value.length <= MAX_TOKEN_CHARS && TOKEN_PATTERN.test(value);
}

function mac(payload: string, adminToken: string): string {
  const key = createHmac("sha256", adminToken).update(KEY_LABEL).digest();
  return createHmac("sha256", key).update(payload).digest("base64url");
}
