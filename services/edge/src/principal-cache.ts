import { createHash } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import { AuthService, WatchKeyChangesResponse_Kind as ChangeKind } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { Principal } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";

/** A cached principal is revalidated with auth after this long even with a live watch. */
export const PRINCIPAL_TTL_MS = 60_000;
/** Without a live watch, cached principals are trusted this long before asking auth again. */
export const WATCH_DOWN_TRUST_MS = 1_000;
/** The watch counts as down when nothing (not even a heartbeat) came for this long. */
export const WATCH_SILENCE_MS = 5_000;
const WATCH_RETRY_MS = 250;
/**
 * Longest an authentication waits for auth. Long enough to ride out a restart of auth (the
 * edge's auth client waits while its channel reconnects), so a request is delayed, not failed.
 */
const AUTHENTICATE_TIMEOUT_MS = 20_000;
/** Longest key sent to auth; longer or non-printable ones are refused at the edge. */
const MAX_KEY_CHARS = 256;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

interface Entry {
  principal: Principal;
  validatedAtMs: number;
  /** Never trusted at or after this (key expiry, end of a rotation's grace); 0 = unbounded. */
  validUntilMs: number;
}

/**
 * The edge's principal cache. A fresh entry answers without calling auth;
 * auth's key-change watch evicts revoked or changed keys at once. While the
 * watch is down, entries older than WATCH_DOWN_TRUST_MS are revalidated, so
 * a revocation is never trusted away for long (fail closed).
 */
export class PrincipalCache {
  readonly #entries = new Map<string, Entry>();
  readonly #byKeyId = new Map<string, Set<string>>();
  #watchAliveAtMs = 0;
  #synced = false;

  constructor(
    private readonly auth: Client<typeof AuthService>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The principal of a bearer key; throws auth's Unauthenticated error for bad keys. */
  async authenticate(apiKey: string, signal?: AbortSignal): Promise<Principal> {
    if (apiKey.length > MAX_KEY_CHARS || !PRINTABLE_ASCII.test(apiKey)) throw meshError(Code.Unauthenticated, "invalid API key");
    const cacheKey = createHash("sha256").update(apiKey).digest("base64url");
    const entry = this.#entries.get(cacheKey);
    const now = this.now();
    if (entry && now - entry.validatedAtMs < this.#trustMs(now) && (entry.validUntilMs === 0 || now < entry.validUntilMs)) return entry.principal;
    const { principal, validUntilMs } = await this.auth.authenticate({ apiKey }, { signal, timeoutMs: AUTHENTICATE_TIMEOUT_MS });
    if (!principal) throw meshError(Code.Internal, "auth returned no principal");
    this.#entries.set(cacheKey, { principal, validatedAtMs: this.now(), validUntilMs: Number(validUntilMs) });
    let keys = this.#byKeyId.get(principal.keyId);
    if (!keys) this.#byKeyId.set(principal.keyId, (keys = new Set()));
    keys.add(cacheKey);
    return principal;
  }

  get watching(): boolean {
    return this.#synced && this.now() - this.#watchAliveAtMs < WATCH_SILENCE_MS;
  }

  #trustMs(now: number): number {
    return this.#synced && now - this.#watchAliveAtMs < WATCH_SILENCE_MS ? PRINCIPAL_TTL_MS : WATCH_DOWN_TRUST_MS;
  }

  /** Called after a pushed change evicted a key (tests and benchmarks measure propagation with it). */
  onEvict: ((keyId: string) => void) | undefined;

  /** Drops every cached entry of a key. */
  evict(keyId: string): void {
    for (const cacheKey of this.#byKeyId.get(keyId) ?? []) this.#entries.delete(cacheKey);
    this.#byKeyId.delete(keyId);
    this.onEvict?.(keyId);
  }

  /** Follows auth's key-change watch until `signal` aborts, reconnecting by itself. */
  async follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const change of this.auth.watchKeyChanges({}, { signal })) {
          this.#watchAliveAtMs = this.now();
          if (change.kind === ChangeKind.SYNCED) {
            // Changes may have been missed while disconnected: start clean.
            this.#entries.clear();
            this.#byKeyId.clear();
            this.#synced = true;
          } else if (change.keyId) {
            this.evict(change.keyId);
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        this.log.warn({ err: (err as Error).message }, "key watch broken; reconnecting");
      }
      this.#synced = false;
      await new Promise((r) => setTimeout(r, WATCH_RETRY_MS));
    }
  }
}
