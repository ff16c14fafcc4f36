import type { Account, KeyInfo, UsageRow } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";

/** An instant as the admin API shows it: ISO 8601, or null for "never". */
export function isoOrNull(ms: bigint): string | null {
  return ms > 0n ? new Date(Number(ms)).toISOString() : null;
}

/** A key in admin JSON: public id and hint, never its secret. */
export function keyJson(k: KeyInfo) {
  return {
    id: k.id,
    object: "api_key",
    account: k.accountId,
    name: k.name,
    hint: k.hint,
    models: k.allowedModels,
    rpm: k.limits?.requestsPerMinute ?? 0,
    tpm: k.limits?.tokensPerMinute ?? 0,
    max_concurrent: k.limits?.maxConcurrent ?? 0,
    admin: k.admin,
    created_at: isoOrNull(k.createdAtMs),
    expires_at: isoOrNull(k.expiresAtMs),
    revoked_at: isoOrNull(k.revokedAtMs),
    previous_secret_valid_until: isoOrNull(k.previousValidUntilMs),
  };
}

/** An account in admin JSON. */
export function accountJson(a: Account) {
  return {
    id: a.id,
    object: "account",
    name: a.name,
    retention: !a.retentionOptOut,
    created_at: isoOrNull(a.createdAtMs),
    /** When the oldest stored request log of the account will be deleted; null when none is stored. */
    oldest_request_log_deleted_at: isoOrNull(a.oldestRequestLogDeletedAtMs),
  };
}

/** One usage aggregate in admin JSON. */
export function usageJson(r: UsageRow) {
  const prompt = Number(r.promptTokens);
  const completion = Number(r.completionTokens);
  return {
    group: r.group,
    requests: Number(r.requests),
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    last_at: isoOrNull(r.lastAtMs),
  };
}
