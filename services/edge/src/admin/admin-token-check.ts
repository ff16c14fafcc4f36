import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { KeyAdminService } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { HttpError } from "../openai/errors.js";
import { isConsoleToken } from "../../../auth/src/console-token.js";

const ADMIN_TOKEN_PATTERN = /^Bearer +(mesh-admin-[A-Za-z0-9_-]{43}) *$/i;
/** How long a token auth accepted is trusted without asking again. */
const VERIFIED_TTL_MS = 30_000;
const CHECK_TIMEOUT_MS = 2_000;

/**
 * Checks the operator's admin token for the edge's own admin routes (the
 * experiments API, served by the router, which knows no tokens). Auth is the
 * one that knows the token: its `CheckAdmin` call says whether it is valid;
 * the answer is cached for VERIFIED_TTL_MS by the token's hash.
 */
export class AdminTokenCheck {
  readonly #verified = new Map<string, number>();

  constructor(private readonly keyAdmin: Client<typeof KeyAdminService>) {}

  /**
   * Resolves when the request carries a valid admin token, or a console token
   * of an admin session (auth refuses account-scoped ones); 401 otherwise.
   */
  async require(req: IncomingMessage): Promise<void> {
    const token = managementTokenOf(req);
    const digest = createHash("sha256").update(token).digest("hex");
    if ((this.#verified.get(digest) ?? 0) > Date.now()) return;
    try {
      await this.keyAdmin.checkAdmin({}, { headers: { authorization: `Bearer ${token}` }, timeoutMs: CHECK_TIMEOUT_MS });
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated || code === Code.PermissionDenied) throw invalid();
      throw err;
    }
    if (this.#verified.size > 64) this.#verified.clear();
    this.#verified.set(digest, Date.now() + VERIFIED_TTL_MS);
  }
}

/** The admin token of a request (`Authorization: Bearer mesh-admin-…`); a 401 for anything else (API keys included). */
export function adminTokenOf(req: IncomingMessage): string {
  const token = ADMIN_TOKEN_PATTERN.exec(req.headers.authorization ?? "")?.[1];
  if (!token) throw invalid();
  return token;
}

function invalid(): HttpError {
  return new HttpError(
    401,
    "The admin API needs the admin token as 'Authorization: Bearer mesh-admin-…' (API keys are not accepted).",
    "invalid_request_error",
    null,
    "invalid_admin_token",
  );
}

/** The admin token or a console token of a request (`Authorization: Bearer …`); a 401 for anything else. */
export function managementTokenOf(req: IncomingMessage): string {
  const token = /^Bearer +(mesh-console-[A-Za-z0-9_.-]{1,500}) *$/i.exec(req.headers.authorization ?? "")?.[1];
  return token && isConsoleToken(token) ? token : adminTokenOf(req);
}
