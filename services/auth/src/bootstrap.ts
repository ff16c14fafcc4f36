import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { generateKey, hashSecret, parseKey } from "./api-key.js";
import type { KeyStore } from "./store/index.js";
import { ConfigError } from "../../../lib/runtime/index.js";

export const DEFAULT_ACCOUNT_ID = "default";
export const FIRST_KEY_FILE = "first-api-key";

/**
 * On a store with no key, registers the first one: `bootstrapKey` when
 * given (scripts, CI), else a new random key, written to
 * `<dataDir>/first-api-key` with mode 0600. Returns whether it created one.
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
    if (await store.getKey(parsed.id)) return false;
    await store.putKey(newKeyRecord(parsed.id, hashSecret(parsed.secret), "bootstrap key", now));
  } else {
    if ((await store.countKeys()) > 0) return false;
    const key = generateKey();
    await store.putKey(newKeyRecord(key.id, key.secretHash, "first key", now));
    await writeFile(path.join(dataDir, FIRST_KEY_FILE), `${key.apiKey}\n`, { mode: 0o600 });
    return true;
  }
  return false;
}

function newKeyRecord(id: string, secretHash: string, name: string, now: number) {
  return {
    id,
    accountId: DEFAULT_ACCOUNT_ID,
    name,
    secretHash,
    previousSecretHash: null,
    previousValidUntilMs: 0,
    allowedModels: [],
    requestsPerMinute: 0,
    tokensPerMinute: 0,
    createdAtMs: now,
    expiresAtMs: 0,
    revokedAtMs: 0,
    admin: false,
  };
}
