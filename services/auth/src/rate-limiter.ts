import type { RateStatus } from "../../../lib/rate-limit-status.js";

/** Defined once, from auth.proto's RateLimitStatus (lib/rate-limit-status.ts). */
export type { RateStatus };

/** The window both limits count over. */
export const RATE_WINDOW_MS = 60_000;

/** A key's limits; 0 = unlimited. */
export interface RateLimits {
  requestsPerMinute: number;
  tokensPerMinute: number;
}

/** The outcome of one admission: admitted or not, and the status either way. */
export interface Admission {
  admitted: boolean;
  /** Which limit refused: "requests" or "tokens"; undefined when admitted. */
  exceeded?: "requests" | "tokens";
  status: RateStatus;
}

/**
 * What AuthService needs from a limiter. The in-memory {@link RateLimiter}
 * answers synchronously (SQLite mode, one auth process); the NATS one
 * (`nats-rate-limiter.ts`, MESH_STORE=nats) is shared by every replica and
 * answers asynchronously. `keyId` on settle lets a shared limiter find the
 * grant when usage is recorded on another replica than the admission.
 */
export interface KeyRateLimiter {
  admit(keyId: string, requestId: string, tokens: number, limits: RateLimits): Admission | Promise<Admission>;
  settle(requestId: string, usedTokens: number, keyId?: string): void | Promise<void>;
  status(keyId: string, limits: RateLimits): RateStatus | Promise<RateStatus>;
  forget(keyId: string): void | Promise<void>;
  close?(): Promise<void>;
}

interface Grant {
  requestId: string;
  atMs: number;
  tokens: number;
}

/**
 * Per-key sliding-window limits on requests and tokens per minute. A grant
 * is counted from its admission for one window; its tokens start as the
 * reservation and are corrected to the real usage by `settle`. `admit` is
 * synchronous, so concurrent admissions on one process are counted exactly.
 * State is in memory: one auth process holds a key's window (scale-out
 * needs a shared counter; see docs).
 */
export class RateLimiter implements KeyRateLimiter {
  readonly #grants = new Map<string, Grant[]>();
  readonly #byRequest = new Map<string, { keyId: string; grant: Grant }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Admits one request reserving `tokens`, or refuses it without counting it. */
  admit(keyId: string, requestId: string, tokens: number, limits: RateLimits): Admission {
    const now = this.now();
    const grants = this.#live(keyId, now);
    const usedTokens = grants.reduce((sum, g) => sum + g.tokens, 0);
    const { requestsPerMinute: rpm, tokensPerMinute: tpm } = limits;
    let exceeded: Admission["exceeded"];
    if (rpm > 0 && grants.length + 1 > rpm) exceeded = "requests";
    else if (tpm > 0 && usedTokens + tokens > tpm) exceeded = "tokens";
    if (!exceeded && (rpm > 0 || tpm > 0) && !this.#byRequest.has(requestId)) {
      const grant = { requestId, atMs: now, tokens };
      grants.push(grant);
      this.#grants.set(keyId, grants);
      this.#byRequest.set(requestId, { keyId, grant });
    }
    return { admitted: !exceeded, exceeded, status: this.#status(grants, limits, now, exceeded === "tokens" ? tokens : 0) };
  }

  /** Corrects a grant's tokens to what the request really used. Unknown ids are ignored. */
  settle(requestId: string, usedTokens: number): void {
    const entry = this.#byRequest.get(requestId);
    if (entry) entry.grant.tokens = usedTokens;
  }

  /** The current status of a key without admitting anything. */
  status(keyId: string, limits: RateLimits): RateStatus {
    const now = this.now();
    return this.#status(this.#live(keyId, now), limits, now, 0);
  }

  /** Forgets a key (revoked): its grants no longer matter. */
  forget(keyId: string): void {
    for (const g of this.#grants.get(keyId) ?? []) this.#byRequest.delete(g.requestId);
    this.#grants.delete(keyId);
  }

  /** The grants of a key still inside the window; expired ones are dropped. */
  #live(keyId: string, now: number): Grant[] {
    const grants = this.#grants.get(keyId);
    if (!grants) return [];
    let expired = 0;
    while (expired < grants.length && grants[expired].atMs + RATE_WINDOW_MS <= now) {
      this.#byRequest.delete(grants[expired].requestId);
      expired++;
    }
    if (expired > 0) grants.splice(0, expired);
    if (grants.length === 0) this.#grants.delete(keyId);
    return grants;
  }

  #status(grants: Grant[], limits: RateLimits, now: number, wantedTokens: number): RateStatus {
    const usedTokens = grants.reduce((sum, g) => sum + g.tokens, 0);
    const oldest = grants[0];
    // Until the oldest grant leaves the window and one more request fits.
    const resetRequestsMs = oldest && limits.requestsPerMinute > 0 ? oldest.atMs + RATE_WINDOW_MS - now : 0;
    return {
      limitRequests: limits.requestsPerMinute,
      remainingRequests: limits.requestsPerMinute > 0 ? Math.max(0, limits.requestsPerMinute - grants.length) : 0,
      resetRequestsMs: Math.max(0, resetRequestsMs),
      limitTokens: limits.tokensPerMinute,
      remainingTokens: limits.tokensPerMinute > 0 ? Math.max(0, limits.tokensPerMinute - usedTokens) : 0,
      resetTokensMs: limits.tokensPerMinute > 0 ? tokenResetMs(grants, usedTokens, limits.tokensPerMinute, now, Math.max(wantedTokens, 1)) : 0,
    };
  }
}

/** How long until `wanted` tokens fit under the limit again, as grants (`used` tokens in all) leave the window. */
function tokenResetMs(grants: Grant[], used: number, limit: number, now: number, wanted: number): number {
  if (used + wanted <= limit) return 0;
  for (const g of grants) {
    used -= g.tokens;
    if (used + wanted <= limit) return Math.max(0, g.atMs + RATE_WINDOW_MS - now);
  }
  return RATE_WINDOW_MS;
}
