import { EventEmitter, on } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AdmitResponseSchema,
  AuthenticateResponseSchema,
  PrincipalSchema,
  RecordUsageBatchResponseSchema,
  RecordUsageResponseSchema,
  UsageStatus,
  WatchKeyChangesResponse_Kind as ChangeKind,
  WatchKeyChangesResponseSchema,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type {
  AdmitRequest,
  AuthenticateRequest,
  AuthService as AuthServiceDesc,
  Principal,
  RecordUsageBatchRequest,
  RecordUsageRequest,
  WatchKeyChangesResponse,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, meshError } from "../../../lib/errors.js";
import { parseKey, secretMatches } from "./api-key.js";
import { RateLimiter } from "./rate-limiter.js";
import type { KeyRateLimiter, RateLimits } from "./rate-limiter.js";
import { RATE_STATUS_METADATA } from "../../../lib/rate-limit-status.js";
import type { RateStatus } from "../../../lib/rate-limit-status.js";
import type { AccountRecord, KeyChange, KeyRecord, KeyStore, UsageStatusName } from "./store/index.js";

/** How often a key watch says it is alive. */
export const WATCH_HEARTBEAT_MS = 2_000;

const USAGE_STATUS_NAMES: Record<UsageStatus, UsageStatusName> = {
  [UsageStatus.UNSPECIFIED]: "ok",
  [UsageStatus.OK]: "ok",
  [UsageStatus.ERROR]: "error",
  [UsageStatus.CANCELLED]: "cancelled",
};

/** The same refusal for every bad key, so a caller learns nothing from it. */
function invalidKey(): Error {
  return meshError(Code.Unauthenticated, "invalid API key");
}

/** A key's limits (0 = unlimited), as the limiter and the protos take them; the edge enforces `maxConcurrent`. */
export function limitsOf(key: KeyRecord): RateLimits & { maxConcurrent: number } {
  return { requestsPerMinute: key.requestsPerMinute, tokensPerMinute: key.tokensPerMinute, maxConcurrent: key.maxConcurrent ?? 0 };
}

/** Builds the principal a key acts as. */
function principalOf(key: KeyRecord, account: AccountRecord | undefined): Principal {
  return create(PrincipalSchema, {
    keyId: key.id,
    accountId: key.accountId,
    keyName: key.name,
    allowedModels: key.allowedModels,
    limits: limitsOf(key),
    expiresAtMs: BigInt(key.expiresAtMs),
    retentionOptOut: account?.retentionOptOut ?? false,
    admin: key.admin,
  });
}

/** Options of the auth service; the clock and heartbeat are injectable for tests. */
export interface AuthServiceOptions {
  changes?: EventEmitter;
  limiter?: KeyRateLimiter;
  now?: () => number;
  heartbeatMs?: number;
}

/**
 * Key validation, the key-change watch, admission and usage recording.
 * `changes` is shared with the admin service, which publishes on it.
 */
export class AuthService implements ServiceImpl<typeof AuthServiceDesc> {
  readonly changes: EventEmitter;
  readonly limiter: KeyRateLimiter;
  readonly #now: () => number;
  readonly #heartbeatMs: number;

  constructor(
    private readonly store: KeyStore,
    options: AuthServiceOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.changes = options.changes ?? new EventEmitter();
    this.changes.setMaxListeners(0);
    this.limiter = options.limiter ?? new RateLimiter(this.#now);
    this.#heartbeatMs = options.heartbeatMs ?? WATCH_HEARTBEAT_MS;
  }

  /** Tells every watching edge that a key changed. */
  publish(change: KeyChange): void {
    this.changes.emit("change", change);
  }

  async authenticate(req: AuthenticateRequest) {
    const parsed = parseKey(req.apiKey);
    if (!parsed) throw invalidKey();
    const key = await this.store.getKey(parsed.id);
    if (!key || key.revokedAtMs > 0) throw invalidKey();
    const now = this.#now();
    const current = secretMatches(parsed.secret, key.secretHash);
    const previous = !current && key.previousSecretHash !== null && now < key.previousValidUntilMs && secretMatches(parsed.secret, key.previousSecretHash);
    if (!current && !previous) throw invalidKey();
    if (key.expiresAtMs > 0 && now >= key.expiresAtMs) throw meshError(Code.Unauthenticated, "API key expired");
    const account = await this.store.getAccount(key.accountId);
    const bounds = [key.expiresAtMs, previous ? key.previousValidUntilMs : 0].filter((t) => t > 0);
    const validUntilMs = bounds.length > 0 ? Math.min(...bounds) : 0;
    return create(AuthenticateResponseSchema, { principal: principalOf(key, account), validUntilMs: BigInt(validUntilMs) });
  }

  async *watchKeyChanges(_req: unknown, ctx: HandlerContext): AsyncGenerator<WatchKeyChangesResponse> {
    // Each watcher gets its own stream and its own heartbeat (one per interval, not one per watcher).
    const local = new EventEmitter();
    const forward = (change: KeyChange): boolean => local.emit("change", change);
    this.changes.on("change", forward);
    const events = on(local, "change", { signal: ctx.signal }) as AsyncIterableIterator<[KeyChange]>;
    const heartbeat = setInterval(() => local.emit("change", { kind: ChangeKind.HEARTBEAT, keyId: "" }), this.#heartbeatMs);
    try {
      yield create(WatchKeyChangesResponseSchema, { kind: ChangeKind.SYNCED });
      for await (const [change] of events) {
        yield create(WatchKeyChangesResponseSchema, { kind: change.kind, keyId: change.keyId });
      }
    } catch (err) {
      if (!ctx.signal.aborted) throw err;
    } finally {
      clearInterval(heartbeat);
      this.changes.off("change", forward);
    }
  }

  async admit(req: AdmitRequest) {
    const key = await this.store.getKey(req.keyId);
    if (!key || key.revokedAtMs > 0) throw invalidKey();
    // The limiter counts concurrent admissions exactly (in memory: synchronously; on NATS: by revision).
    const limits = limitsOf(key);
    const admission = await this.limiter.admit(key.id, req.requestId, req.reserveTokens, limits);
    if (!admission.admitted) {
      const what =
        admission.exceeded === "tokens"
          ? `tokens per min (TPM): Limit ${limits.tokensPerMinute}, Requested ${req.reserveTokens}`
          : `requests per min (RPM): Limit ${limits.requestsPerMinute}`;
      const err = meshError(Code.ResourceExhausted, `Rate limit reached for key ${key.id} on ${what}.`, {
        reason: "rate_limit_exceeded",
        param: admission.exceeded,
      });
      for (const [field, header] of Object.entries(RATE_STATUS_METADATA)) err.metadata.set(header, String(admission.status[field as keyof RateStatus]));
      throw err;
    }
    return create(AdmitResponseSchema, { status: admission.status });
  }

  /** Many records in one call, each as `recordUsage` (in order, so a repeat within a batch counts once). */
  async recordUsageBatch(req: RecordUsageBatchRequest) {
    let recorded = 0;
    for (const record of req.records) if ((await this.recordUsage(record)).recorded) recorded++;
    return create(RecordUsageBatchResponseSchema, { recorded });
  }

  async recordUsage(req: RecordUsageRequest) {
    const createdAtMs = Number(req.createdAtMs) || this.#now();
    const recorded = await this.store.recordUsage({
      requestId: req.requestId,
      keyId: req.keyId,
      accountId: req.accountId,
      model: req.model,
      backend: req.backend,
      promptTokens: req.promptTokens,
      completionTokens: req.completionTokens,
      status: USAGE_STATUS_NAMES[req.status],
      ttftMs: req.ttftMs,
      e2eMs: req.e2eMs,
      createdAtMs,
    });
    if (!recorded) return create(RecordUsageResponseSchema, { recorded });
    await this.limiter.settle(req.requestId, req.promptTokens + req.completionTokens, req.keyId);
    if (req.requestJson || req.responseText) {
      // The account decides, not the edge's possibly stale principal: opted out means nothing stored.
      const account = await this.store.getAccount(req.accountId);
      if (account && !account.retentionOptOut) {
        await this.store.putRequestLog({
          requestId: req.requestId,
          accountId: req.accountId,
          requestJson: req.requestJson,
          responseText: req.responseText,
          createdAtMs,
        });
      }
    }
    return create(RecordUsageResponseSchema, { recorded });
  }
}
