import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AccountSchema,
  CheckAdminResponseSchema,
  CreateAccountResponseSchema,
  CreateKeyResponseSchema,
  GetUsageResponseSchema,
  IssueConsoleTokenResponseSchema,
  KeyInfoSchema,
  ListAccountsResponseSchema,
  ListKeysResponseSchema,
  RevokeKeyResponseSchema,
  RotateKeyResponseSchema,
  SetAccountRetentionResponseSchema,
  WatchKeyChangesResponse_Kind as ChangeKind,
} from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type {
  CheckAdminRequest,
  Account,
  CreateAccountRequest,
  CreateKeyRequest,
  GetUsageRequest,
  IssueConsoleTokenRequest,
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
import { DEFAULT_CONSOLE_TOKEN_TTL_MS, MAX_CONSOLE_TOKEN_TTL_MS, signConsoleToken, verifyConsoleToken } from "./console-token.js";
import { RETENTION_MS } from "./retention-sweeper.js";
import type { KeyChange } from "./store/index.js";
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

function accountOf(a: AccountRecord, oldestLogs: Map<string, number>): Account {
  const oldest = oldestLogs.get(a.id);
  return create(AccountSchema, {
    id: a.id,
    name: a.name,
    retentionOptOut: a.retentionOptOut,
    createdAtMs: BigInt(a.createdAtMs),
    oldestRequestLogDeletedAtMs: BigInt(oldest === undefined ? 0 : oldest + RETENTION_MS),
  });
}

/**
 * Who is calling: the operator (admin token, or an admin console token), or
 * one account (its console token), which sees and changes only its own
 * accounts, keys and usage.
 */
type Caller = { admin: true } | { admin: false; account: string };

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

  #authorize(ctx: HandlerContext): Caller {
    const token = bearerToken(ctx.requestHeader.get("authorization"));
    if (adminTokenMatches(token, this.deps.adminToken)) return { admin: true };
    const claims = token ? verifyConsoleToken(token, this.deps.adminToken, this.#now()) : undefined;
    if (claims) return claims.account ? { admin: false, account: claims.account } : { admin: true };
    throw meshError(Code.Unauthenticated, "a valid admin token or console token is required", { reason: "invalid_admin_token" });
  }

  /** The admin token itself (not a console token): for calls that mint credentials. */
  #authorizeAdminToken(ctx: HandlerContext): void {
    this.#authorize(ctx);
    if (!adminTokenMatches(bearerToken(ctx.requestHeader.get("authorization")), this.deps.adminToken)) {
      throw meshError(Code.PermissionDenied, "only the admin token may do this", { reason: "admin_token_required" });
    }
  }

  /** An account caller may name only its own account (empty means its own). */
  #accountFor(caller: Caller, requested: string): string {
    if (caller.admin) return requested;
    if (requested && requested !== caller.account)
      throw meshError(Code.PermissionDenied, "this token is scoped to another account", { param: "account_id", reason: "account_scope" });
    return caller.account;
  }

  async #oldestLogs(): Promise<Map<string, number>> {
    return this.deps.store.oldestRequestLogs();
  }

  checkAdmin(_req: CheckAdminRequest, ctx: HandlerContext) {
    if (!this.#authorize(ctx).admin) throw meshError(Code.PermissionDenied, "this token is scoped to one account", { reason: "admin_required" });
    return create(CheckAdminResponseSchema, {});
  }

  async createAccount(req: CreateAccountRequest, ctx: HandlerContext) {
    if (!this.#authorize(ctx).admin) throw meshError(Code.PermissionDenied, "only the operator creates accounts", { reason: "admin_required" });
    if (!ACCOUNT_ID_PATTERN.test(req.id)) throw meshError(Code.InvalidArgument, "account id must be 1-64 letters, digits, '.', '_' or '-'", { param: "id" });
    if (await this.deps.store.getAccount(req.id)) throw meshError(Code.AlreadyExists, `account ${req.id} exists already`, { param: "id" });
    const account = await this.deps.store.createAccount({ id: req.id, name: checkName(req.name) || req.id, retentionOptOut: false, createdAtMs: this.#now() });
    return create(CreateAccountResponseSchema, { account: accountOf(account, new Map()) });
  }

  async listAccounts(_req: unknown, ctx: HandlerContext) {
    const caller = this.#authorize(ctx);
    const accounts = caller.admin ? await this.deps.store.listAccounts() : [await this.#account(caller.account)];
    const oldest = await this.#oldestLogs();
    return create(ListAccountsResponseSchema, { accounts: accounts.map((a) => accountOf(a, oldest)) });
  }

  async setAccountRetention(req: SetAccountRetentionRequest, ctx: HandlerContext) {
    const account = await this.#account(this.#accountFor(this.#authorize(ctx), req.id));
    account.retentionOptOut = !req.retention;
    await this.deps.store.updateAccount(account);
    for (const key of await this.deps.store.listKeys(account.id)) this.deps.publish({ kind: ChangeKind.UPDATED, keyId: key.id });
    return create(SetAccountRetentionResponseSchema, { account: accountOf(account, await this.#oldestLogs()) });
  }

  async createKey(req: CreateKeyRequest, ctx: HandlerContext) {
    const caller = this.#authorize(ctx);
    if (req.admin && !caller.admin)
      throw meshError(Code.PermissionDenied, "an account token cannot create admin keys", { param: "admin", reason: "admin_required" });
    const account = await this.#account(this.#accountFor(caller, req.accountId) || DEFAULT_ACCOUNT_ID);
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
    const accountId = this.#accountFor(this.#authorize(ctx), req.accountId);
    return create(ListKeysResponseSchema, { keys: (await this.deps.store.listKeys(accountId || undefined)).map(keyInfoOf) });
  }

  async revokeKey(req: RevokeKeyRequest, ctx: HandlerContext) {
    const key = await this.#key(req.id, this.#authorize(ctx));
    if (key.revokedAtMs === 0) {
      key.revokedAtMs = this.#now();
      await this.deps.store.putKey(key);
    }
    await this.deps.limiter.forget(key.id);
    this.deps.publish({ kind: ChangeKind.REVOKED, keyId: key.id });
    return create(RevokeKeyResponseSchema, { keyInfo: keyInfoOf(key) });
  }

  async rotateKey(req: RotateKeyRequest, ctx: HandlerContext) {
    const key = await this.#key(req.id, this.#authorize(ctx));
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
    const accountId = this.#accountFor(this.#authorize(ctx), req.accountId);
    const groupBy = (req.groupBy || "day") as UsageQuery["groupBy"];
    if (!GROUPS.has(groupBy)) throw meshError(Code.InvalidArgument, "group_by must be day, model or key", { param: "group_by" });
    const rows = await this.deps.store.queryUsage({
      accountId: accountId || undefined,
      fromMs: Number(req.fromMs) || undefined,
      toMs: Number(req.toMs) || undefined,
      groupBy,
      withLastAt: true,
    });
    return create(GetUsageResponseSchema, {
      rows: rows.map((r) => ({
        group: r.group,
        requests: BigInt(r.requests),
        promptTokens: BigInt(r.promptTokens),
        completionTokens: BigInt(r.completionTokens),
        lastAtMs: BigInt(r.lastAtMs ?? 0),
      })),
    });
  }

  async issueConsoleToken(req: IssueConsoleTokenRequest, ctx: HandlerContext) {
    this.#authorizeAdminToken(ctx);
    const ttlMs = Number(req.ttlMs) || DEFAULT_CONSOLE_TOKEN_TTL_MS;
    if (ttlMs < 0 || ttlMs > MAX_CONSOLE_TOKEN_TTL_MS) {
      throw meshError(Code.InvalidArgument, `ttl must be between 1 ms and ${MAX_CONSOLE_TOKEN_TTL_MS / 3_600_000} hours`, { param: "ttl_ms" });
    }
    if (req.accountId) await this.#account(req.accountId);
    const expiresAtMs = this.#now() + ttlMs;
    const token = signConsoleToken({ account: req.accountId, expiresAtMs }, this.deps.adminToken!);
    return create(IssueConsoleTokenResponseSchema, { token, accountId: req.accountId, expiresAtMs: BigInt(expiresAtMs) });
  }

  async #account(id: string): Promise<AccountRecord> {
    const account = id ? await this.deps.store.getAccount(id) : undefined;
    if (!account) throw meshError(Code.NotFound, `no account ${JSON.stringify(id.slice(0, 64))}`, { param: "account_id", reason: "account_not_found" });
    return account;
  }

  async #key(id: string, caller: Caller): Promise<KeyRecord> {
    const wellFormed = isKeyId(id);
    const found = wellFormed ? await this.deps.store.getKey(id) : undefined;
    // Another account's key reads as absent: an account token cannot probe for key ids.
    const key = found && (caller.admin || found.accountId === caller.account) ? found : undefined;
    // Never echo what is not a key id: it may be a whole key pasted by mistake.
    if (!key)
      throw meshError(Code.NotFound, wellFormed ? `no key ${id}` : "no key with this id (use the public id, not the key)", {
        param: "id",
        reason: "key_not_found",
      });
    return key;
  }
}

function checkName(name: string): string {
  if (name.length > MAX_NAME_CHARS) throw meshError(Code.InvalidArgument, `name is longer than ${MAX_NAME_CHARS} characters`, { param: "name" });
  return name;
}
