import { chmod, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { generateKey, hashSecret, parseKey } from "./api-key.js";
import type { KeyRecord, KeyStore } from "./store/index.js";
import { ConfigError } from "../../../lib/runtime/index.js";

export const DEFAULT_ACCOUNT_ID = "default";
export const FIRST_KEY_FILE = "first-api-key";

/**
 * On a store with no key, registers the first one: `bootstrapKey` when
 * given (scripts, CI; the caller knows it already), else a new random key,
 * written to `<dataDir>/first-api-key` with mode 0600. Returns whether it
 * wrote that file.
 */
export async function ensureFirstKey(store: KeyStore, dataDir: string, bootstrapKey: string | undefined, now = Date.now()): Promise<boolean> {
  if (!(await store.getAccount(DEFAULT_ACCOUNT_ID))) {
    try {
      await store.createAccount({ id: DEFAULT_ACCOUNT_ID, name: "Default account", retentionOptOut: false, createdAtMs: now });
    } catch (err) {
      // Another auth replica sharing the store created it first: that is fine.
      if (!(await store.getAccount(DEFAULT_ACCOUNT_ID))) throw err;
    }
  }
  if (bootstrapKey) {
    const parsed = parseKey(bootstrapKey);
    if (!parsed) throw new ConfigError("MESH_BOOTSTRAP_API_KEY must start with sk- and be 24 to 256 printable characters");
    if (!(await store.getKey(parsed.id))) {
      await store.putKey(
        newKeyRecord({ id: parsed.id, accountId: DEFAULT_ACCOUNT_ID, name: "bootstrap key", secretHash: hashSecret(parsed.secret), createdAtMs: now }),
      );
    }
    return false;
  }
  if ((await store.countKeys()) > 0) return false;
  const key = generateKey();
  await store.putKey(newKeyRecord({ id: key.id, accountId: DEFAULT_ACCOUNT_ID, name: "first key", secretHash: key.secretHash, createdAtMs: now }));
  const file = path.join(dataDir, FIRST_KEY_FILE);
  await writeFile(file, `${key.apiKey}\n`, { mode: 0o600 });
  // writeFile's mode applies only to a new file: an old one keeps its mode unless set.
  await chmod(file, 0o600);
  return true;
}

/** A new, unrevoked key record: no previous secret, no expiry, unlimited and unscoped unless `fields` say so. */
export function newKeyRecord(fields: Pick<KeyRecord, "id" | "accountId" | "name" | "secretHash" | "createdAtMs"> & Partial<KeyRecord>): KeyRecord {
  return {
    previousSecretHash: null,
    previousValidUntilMs: 0,
    allowedModels: [],
    requestsPerMinute: 0,
    tokensPerMinute: 0,
    maxConcurrent: 0,
    expiresAtMs: 0,
    revokedAtMs: 0,
    admin: false,
    ...fields,
  };
}
