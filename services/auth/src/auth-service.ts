import { EventEmitter, on } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AdmitResponseSchema,
  AuthenticateResponseSchema,
  PrincipalSchema,
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
  RecordUsageRequest,
  WatchKeyChangesResponse,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, meshError } from "../../../lib/errors.js";
import { parseKey, secretMatches } from "./api-key.js";
import type { AccountRecord, KeyRecord, KeyStore } from "./store/index.js";

/** How often a key watch says it is alive. */
export const WATCH_HEARTBEAT_MS = 2_000;

/** A change pushed to watching edges. */
export interface KeyChange {
  kind: ChangeKind;
  keyId: string;
}

const USAGE_STATUS_NAMES: Record<UsageStatus, "ok" | "error" | "cancelled"> = {
  [UsageStatus.UNSPECIFIED]: "ok",
  [UsageStatus.OK]: "ok",
  [UsageStatus.ERROR]: "error",
  [UsageStatus.CANCELLED]: "cancelled",
};

/** The same refusal for every bad key, so a caller learns nothing from it. */
function invalidKey(): Error {
  return meshError(Code.Unauthenticated, "invalid API key");
}

/** Builds the principal a key acts as. */
export function principalOf(key: KeyRecord, account: AccountRecord | undefined): Principal {
  return create(PrincipalSchema, {
    keyId: key.id,
    accountId: key.accountId,
    keyName: key.name,
    allowedModels: key.allowedModels,
    limits: { requestsPerMinute: key.requestsPerMinute, tokensPerMinute: key.tokensPerMinute },
    expiresAtMs: BigInt(key.expiresAtMs),
    retentionOptOut: account?.retentionOptOut ?? false,
    admin: key.admin,
  });
}

/**
 * Key validation, the key-change watch, admission and usage recording.
 * `changes` is shared with the admin service, which emits on it.
 */
export class AuthService implements ServiceImpl<typeof AuthServiceDesc> {
  constructor(
    private readonly store: KeyStore,
    readonly changes: EventEmitter = new EventEmitter(),
    private readonly now: () => number = Date.now,
  ) {
    changes.setMaxListeners(0);
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
    const now = this.now();
    const current = secretMatches(parsed.secret, key.secretHash);
    const previous = key.previousSecretHash !== null && now < key.previousValidUntilMs && secretMatches(parsed.secret, key.previousSecretHash);
    if (!current && !previous) throw invalidKey();
    if (key.expiresAtMs > 0 && now >= key.expiresAtMs) throw meshError(Code.Unauthenticated, "API key expired");
    const account = await this.store.getAccount(key.accountId);
    return create(AuthenticateResponseSchema, { principal: principalOf(key, account) });
  }

  async *watchKeyChanges(_req: unknown, ctx: HandlerContext): AsyncGenerator<WatchKeyChangesResponse> {
    const events = on(this.changes, "change", { signal: ctx.signal }) as AsyncIterableIterator<[KeyChange]>;
    yield create(WatchKeyChangesResponseSchema, { kind: ChangeKind.SYNCED });
    const heartbeat = setInterval(() => this.changes.emit("change", { kind: ChangeKind.HEARTBEAT, keyId: "" }), WATCH_HEARTBEAT_MS);
    try {
      for await (const [change] of events) {
        yield create(WatchKeyChangesResponseSchema, { kind: change.kind, keyId: change.keyId });
      }
    } catch (err) {
      if (!ctx.signal.aborted) throw err;
    } finally {
      clearInterval(heartbeat);
    }
  }

  async admit(req: AdmitRequest) {
    const key = await this.store.getKey(req.keyId);
    if (!key || key.revokedAtMs > 0) throw invalidKey();
    return create(AdmitResponseSchema, {});
  }

  async recordUsage(req: RecordUsageRequest) {
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
      createdAtMs: Number(req.createdAtMs) || this.now(),
    });
    if (recorded && req.requestJson) {
      const account = await this.store.getAccount(req.accountId);
      if (account && !account.retentionOptOut) {
        await this.store.putRequestLog({
          requestId: req.requestId,
          accountId: req.accountId,
          requestJson: req.requestJson,
          responseText: req.responseText,
          createdAtMs: Number(req.createdAtMs) || this.now(),
        });
      }
    }
    return create(RecordUsageResponseSchema, { recorded });
  }
}
