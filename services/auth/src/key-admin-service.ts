import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AccountSchema,
  CreateAccountResponseSchema,
  CreateKeyResponseSchema,
  GetUsageResponseSchema,
  KeyInfoSchema,
  ListAccountsResponseSchema,
  ListKeysResponseSchema,
  RevokeKeyResponseSchema,
  RotateKeyResponseSchema,
  SetAccountRetentionResponseSchema,
  WatchKeyChangesResponse_Kind as ChangeKind,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type {
  Account,
  CreateAccountRequest,
  CreateKeyRequest,
  GetUsageRequest,
  KeyAdminService as KeyAdminServiceDesc,
  KeyInfo,
  ListKeysRequest,
  RevokeKeyRequest,
  RotateKeyRequest,
  SetAccountRetentionRequest,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, meshError } from "../../../lib/errors.js";
import { adminTokenMatches, bearerToken } from "./admin-token.js";
import { generateKey, isKeyId, keyHint } from "./api-key.js";
import { limitsOf } from "./auth-service.js";
import type { KeyChange } from "./auth-service.js";
import { DEFAULT_ACCOUNT_ID, newKeyRecord } from "./bootstrap.js";
import type { KeyRateLimiter } from "./rate-limiter.js";
import type { AccountRecord, KeyRecord, KeyStore, UsageQuery } from "./store/index.js";

const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_NAME_CHARS = 200;
const MAX_ALLOWED_MODELS = 256;
const GROUPS = new Set<UsageQuery["groupBy"]>(["day", "model", "key"]);

export interface KeyAdminDeps {
  store: KeyStore;
  /** Pushes a key change to every watching edge. */
  publish: (change: KeyChange) => void;
  limiter: KeyRateLimiter;
  /** The operator's admin token; without one every call is refused. */
  adminToken: string | undefined;
  now?: () => number;
}

/** A key as the admin API shows it: never its secret or hash. */
function keyInfoOf(key: KeyRecord): KeyInfo {
  return create(KeyInfoSchema, {
    id: key.id,
    accountId: key.accountId,
    name: key.name,
    allowedModels: key.allowedModels,
    limits: limitsOf(key),
    createdAtMs: BigInt(key.createdAtMs),
    expiresAtMs: BigInt(key.expiresAtMs),
    revokedAtMs: BigInt(key.revokedAtMs),
    admin: key.admin,
    hint: keyHint(key.id),
    previousValidUntilMs: BigInt(key.previousSecretHash ? key.previousValidUntilMs : 0),
  });
}

function accountOf(a: AccountRecord): Account {
  return create(AccountSchema, { id: a.id, name: a.name, retentionOptOut: a.retentionOptOut, createdAtMs: BigInt(a.createdAtMs) });
}

/**
 * Accounts, keys and usage for operators: the one implementation behind
 * the gRPC admin service, the edge's /admin/v1 REST API and the CLI. Every
 * call needs the admin token as `authorization: Bearer …`.
 */
export class KeyAdminService implements ServiceImpl<typeof KeyAdminServiceDesc> {
  readonly #now: () => number;

  constructor(private readonly deps: KeyAdminDeps) {
    this.#now = deps.now ?? Date.now;
  }

  #authorize(ctx: HandlerContext): void {
    if (!adminTokenMatches(bearerToken(ctx.requestHeader.get("authorization")), this.deps.adminToken)) {
      throw meshError(Code.Unauthenticated, "a valid admin token is required", { reason: "invalid_admin_token" });
    }
  }

  async createAccount(req: CreateAccountRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    if (!ACCOUNT_ID_PATTERN.test(req.id)) throw meshError(Code.InvalidArgument, "account id must be 1-64 letters, digits, '.', '_' or '-'", { param: "id" });
    if (await this.deps.store.getAccount(req.id)) throw meshError(Code.AlreadyExists, `account ${req.id} exists already`, { param: "id" });
    const account = await this.deps.store.createAccount({ id: req.id, name: checkName(req.name) || req.id, retentionOptOut: false, createdAtMs: this.#now() });
    return create(CreateAccountResponseSchema, { account: accountOf(account) });
  }

  async listAccounts(_req: unknown, ctx: HandlerContext) {
    this.#authorize(ctx);
    return create(ListAccountsResponseSchema, { accounts: (await this.deps.store.listAccounts()).map(accountOf) });
  }

  async setAccountRetention(req: SetAccountRetentionRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const account = await this.#account(req.id);
    account.retentionOptOut = !req.retention;
    await this.deps.store.updateAccount(account);
    for (const key of await this.deps.store.listKeys(account.id)) this.deps.publish({ kind: ChangeKind.UPDATED, keyId: key.id });
    return create(SetAccountRetentionResponseSchema, { account: accountOf(account) });
  }

  async createKey(req: CreateKeyRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const account = await this.#account(req.accountId || DEFAULT_ACCOUNT_ID);
    if (req.allowedModels.length > MAX_ALLOWED_MODELS || req.allowedModels.some((m) => !m || m.length > MAX_NAME_CHARS)) {
      throw meshError(Code.InvalidArgument, "allowed models must be non-empty names", { param: "allowed_models" });
    }
    const ttlMs = Number(req.ttlMs);
    if (ttlMs < 0) throw meshError(Code.InvalidArgument, "ttl must not be negative", { param: "ttl_ms" });
    const now = this.#now();
    const key = generateKey();
    const record = newKeyRecord({
      id: key.id,
      accountId: account.id,
      name: checkName(req.name) || "key",
      secretHash: key.secretHash,
      createdAtMs: now,
      allowedModels: [...new Set(req.allowedModels)],
      requestsPerMinute: req.limits?.requestsPerMinute ?? 0,
      tokensPerMinute: req.limits?.tokensPerMinute ?? 0,
      maxConcurrent: req.limits?.maxConcurrent ?? 0,
      expiresAtMs: ttlMs > 0 ? now + ttlMs : 0,
      admin: req.admin,
    });
    await this.deps.store.putKey(record);
    return create(CreateKeyResponseSchema, { keyInfo: keyInfoOf(record), apiKey: key.apiKey });
  }

  async listKeys(req: ListKeysRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    return create(ListKeysResponseSchema, { keys: (await this.deps.store.listKeys(req.accountId || undefined)).map(keyInfoOf) });
  }

  async revokeKey(req: RevokeKeyRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const key = await this.#key(req.id);
    if (key.revokedAtMs === 0) {
      key.revokedAtMs = this.#now();
      await this.deps.store.putKey(key);
    }
    await this.deps.limiter.forget(key.id);
    this.deps.publish({ kind: ChangeKind.REVOKED, keyId: key.id });
    return create(RevokeKeyResponseSchema, { keyInfo: keyInfoOf(key) });
  }

  async rotateKey(req: RotateKeyRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const key = await this.#key(req.id);
    if (key.revokedAtMs > 0) throw meshError(Code.FailedPrecondition, `key ${key.id} is revoked`, { param: "id" });
    const graceMs = Number(req.graceMs);
    if (graceMs < 0) throw meshError(Code.InvalidArgument, "grace must not be negative", { param: "grace_ms" });
    const fresh = generateKey(key.id);
    const now = this.#now();
    key.previousSecretHash = graceMs > 0 ? key.secretHash : null;
    key.previousValidUntilMs = graceMs > 0 ? now + graceMs : 0;
    key.secretHash = fresh.secretHash;
    await this.deps.store.putKey(key);
    // Edges drop the old secret's cache entry; re-validating it yields a principal valid only until the grace ends.
    this.deps.publish({ kind: ChangeKind.ROTATED, keyId: key.id });
    return create(RotateKeyResponseSchema, { keyInfo: keyInfoOf(key), apiKey: fresh.apiKey });
  }

  async getUsage(req: GetUsageRequest, ctx: HandlerContext) {
    this.#authorize(ctx);
    const groupBy = (req.groupBy || "day") as UsageQuery["groupBy"];
    if (!GROUPS.has(groupBy)) throw meshError(Code.InvalidArgument, "group_by must be day, model or key", { param: "group_by" });
    const rows = await this.deps.store.queryUsage({
      accountId: req.accountId || undefined,
      fromMs: Number(req.fromMs) || undefined,
      toMs: Number(req.toMs) || undefined,
      groupBy,
    });
    return create(GetUsageResponseSchema, {
      rows: rows.map((r) => ({ group: r.group, requests: BigInt(r.requests), promptTokens: BigInt(r.promptTokens), completionTokens: BigInt(r.completionTokens) })),
    });
  }

  async #account(id: string): Promise<AccountRecord> {
    const account = id ? await this.deps.store.getAccount(id) : undefined;
    if (!account) throw meshError(Code.NotFound, `no account ${JSON.stringify(id.slice(0, 64))}`, { param: "account_id", reason: "account_not_found" });
    return account;
  }

  async #key(id: string): Promise<KeyRecord> {
    const wellFormed = isKeyId(id);
    const key = wellFormed ? await this.deps.store.getKey(id) : undefined;
    // Never echo what is not a key id: it may be a whole key pasted by mistake.
    if (!key) throw meshError(Code.NotFound, wellFormed ? `no key ${id}` : "no key with this id (use the public id, not the key)", { param: "id", reason: "key_not_found" });
    return key;
  }
}

function checkName(name: string): string {
  if (name.length > MAX_NAME_CHARS) throw meshError(Code.InvalidArgument, `name is longer than ${MAX_NAME_CHARS} characters`, { param: "name" });
  return name;
}
