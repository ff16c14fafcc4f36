import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AccountRecord, KeyRecord, KeyStore, UsageRecord } from "./key-store.js";

/** Opens a fresh, empty store; `cleanup` runs after `store.close()`. */
export type KeyStoreFactory = () => Promise<{ store: KeyStore; cleanup?: () => Promise<void> }>;

/** A fixed day in the past: every adapter must accept timestamps older than now. */
const T0 = Date.UTC(2025, 0, 10, 12, 0, 0);
const DAY_MS = 24 * 60 * 60 * 1000;

function account(id: string, createdAtMs: number, overrides: Partial<AccountRecord> = {}): AccountRecord {
  return { id, name: `Account ${id}`, retentionOptOut: false, createdAtMs, ...overrides };
}

function key(id: string, accountId: string, createdAtMs: number, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id,
    accountId,
    name: `key ${id}`,
    secretHash: `hash-${id}`,
    previousSecretHash: null,
    previousValidUntilMs: 0,
    allowedModels: [],
    requestsPerMinute: 0,
    tokensPerMinute: 0,
    maxConcurrent: 0,
    createdAtMs,
    expiresAtMs: 0,
    revokedAtMs: 0,
    admin: false,
    ...overrides,
  };
}

function usage(requestId: string, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId,
    keyId: "k1",
    accountId: "acme",
    model: "tiny",
    backend: "llama",
    promptTokens: 10,
    completionTokens: 5,
    status: "ok",
    ttftMs: 1.5,
    e2eMs: 20.25,
    createdAtMs: T0,
    ...overrides,
  };
}

/**
 * The behaviour every KeyStore adapter must share. Run it once per adapter
 * (`describeKeyStoreContract("sqlite", factory)`), so SQLite and NATS answer
 * the same calls with the same results.
 */
export function describeKeyStoreContract(adapter: string, factory: KeyStoreFactory): void {
  describe(`KeyStore contract: ${adapter}`, () => {
    let store: KeyStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await store.close();
      await cleanup?.();
    });

    it("creates accounts, reads them back and lists them in creation order", async () => {
      await store.createAccount(account("beta", T0 + 2));
      await store.createAccount(account("alpha", T0 + 1, { retentionOptOut: true }));
      expect(await store.getAccount("alpha")).toEqual(account("alpha", T0 + 1, { retentionOptOut: true }));
      expect(await store.getAccount("missing")).toBeUndefined();
      expect((await store.listAccounts()).map((a) => a.id)).toEqual(["alpha", "beta"]);
    });

    it("refuses to create an account whose id exists", async () => {
      await store.createAccount(account("acme", T0));
      await expect(store.createAccount(account("acme", T0 + 1))).rejects.toThrow();
      expect((await store.getAccount("acme"))?.createdAtMs).toBe(T0);
    });

    it("updates an account's name and retention choice and ignores an unknown account", async () => {
      await store.createAccount(account("acme", T0));
      await store.updateAccount(account("acme", T0, { name: "Acme Inc", retentionOptOut: true }));
      expect(await store.getAccount("acme")).toEqual(account("acme", T0, { name: "Acme Inc", retentionOptOut: true }));
      await store.updateAccount(account("ghost", T0));
      expect(await store.getAccount("ghost")).toBeUndefined();
    });

    it("keeps accounts whose ids hold dots and non-ASCII apart", async () => {
      await store.createAccount(account("acme", T0));
      await store.createAccount(account("acme.prod", T0 + 1));
      await store.createAccount(account("café-東京", T0 + 2));
      expect((await store.getAccount("acme.prod"))?.id).toBe("acme.prod");
      expect((await store.getAccount("café-東京"))?.id).toBe("café-東京");
      await store.recordUsage(usage("r1", { accountId: "acme" }));
      await store.recordUsage(usage("r2", { accountId: "acme.prod" }));
      await store.recordUsage(usage("r3", { accountId: "acme.prod" }));
      const rows = await store.queryUsage({ accountId: "acme.prod", groupBy: "model" });
      expect(rows).toEqual([{ group: "tiny", requests: 2, promptTokens: 20, completionTokens: 10 }]);
    });

    it("stores every field of a key and replaces it on a second put", async () => {
      await store.createAccount(account("acme", T0));
      const full = key("k1", "acme", T0, {
        previousSecretHash: "old-hash",
        previousValidUntilMs: T0 + 60_000,
        allowedModels: ["tiny", "big"],
        requestsPerMinute: 60,
        tokensPerMinute: 10_000,
        maxConcurrent: 3,
        expiresAtMs: T0 + DAY_MS,
        admin: true,
      });
      await store.putKey(full);
      expect(await store.getKey("k1")).toEqual(full);
      await store.putKey({ ...full, revokedAtMs: T0 + 5 });
      expect((await store.getKey("k1"))?.revokedAtMs).toBe(T0 + 5);
      expect(await store.getKey("nope")).toBeUndefined();
      expect(await store.countKeys()).toBe(1);
    });

    it("returns copies: changing a returned key does not change the store", async () => {
      await store.createAccount(account("acme", T0));
      await store.putKey(key("k1", "acme", T0));
      const got = (await store.getKey("k1"))!;
      got.revokedAtMs = 99;
      got.allowedModels.push("x");
      expect(await store.getKey("k1")).toEqual(key("k1", "acme", T0));
    });

    it("lists keys of one account or of all, in creation order, and counts them", async () => {
      await store.createAccount(account("a", T0));
      await store.createAccount(account("b", T0));
      await store.putKey(key("k3", "a", T0 + 3));
      await store.putKey(key("k1", "a", T0 + 1));
      await store.putKey(key("k2", "b", T0 + 2));
      expect((await store.listKeys("a")).map((k) => k.id)).toEqual(["k1", "k3"]);
      expect((await store.listKeys()).map((k) => k.id)).toEqual(["k1", "k2", "k3"]);
      expect(await store.listKeys("none")).toEqual([]);
      expect(await store.countKeys()).toBe(3);
    });

    it("records usage once per request id", async () => {
      expect(await store.recordUsage(usage("r1"))).toBe(true);
      expect(await store.recordUsage(usage("r1", { promptTokens: 999 }))).toBe(false);
      expect(await store.queryUsage({ groupBy: "key" })).toEqual([{ group: "k1", requests: 1, promptTokens: 10, completionTokens: 5 }]);
    });

    it("aggregates usage by day, model and key within an account and a time range", async () => {
      await store.recordUsage(usage("r1", { createdAtMs: T0, model: "tiny", keyId: "k1" }));
      await store.recordUsage(usage("r2", { createdAtMs: T0 + 1_000, model: "big", keyId: "k2", promptTokens: 100, completionTokens: 50 }));
      await store.recordUsage(usage("r3", { createdAtMs: T0 + DAY_MS, model: "tiny", keyId: "k1", completionTokens: 7 }));
      await store.recordUsage(usage("r4", { createdAtMs: T0, accountId: "other", keyId: "k9" }));
      expect(await store.queryUsage({ accountId: "acme", groupBy: "day" })).toEqual([
        { group: "2025-01-10", requests: 2, promptTokens: 110, completionTokens: 55 },
        { group: "2025-01-11", requests: 1, promptTokens: 10, completionTokens: 7 },
      ]);
      expect(await store.queryUsage({ accountId: "acme", groupBy: "model" })).toEqual([
        { group: "big", requests: 1, promptTokens: 100, completionTokens: 50 },
        { group: "tiny", requests: 2, promptTokens: 20, completionTokens: 12 },
      ]);
      expect(await store.queryUsage({ groupBy: "key" })).toEqual([
        { group: "k1", requests: 2, promptTokens: 20, completionTokens: 12 },
        { group: "k2", requests: 1, promptTokens: 100, completionTokens: 50 },
        { group: "k9", requests: 1, promptTokens: 10, completionTokens: 5 },
      ]);
      // fromMs inclusive, toMs exclusive.
      expect(await store.queryUsage({ accountId: "acme", fromMs: T0 + 1_000, toMs: T0 + DAY_MS, groupBy: "model" })).toEqual([
        { group: "big", requests: 1, promptTokens: 100, completionTokens: 50 },
      ]);
      expect(await store.queryUsage({ accountId: "nobody", groupBy: "day" })).toEqual([]);
      expect((await store.queryUsage({ groupBy: "key", withLastAt: true })).map((r) => [r.group, r.lastAtMs])).toEqual([
        ["k1", T0 + DAY_MS],
        ["k2", T0 + 1_000],
        ["k9", T0],
      ]);
    });

    it("keeps the first request log of a request id and reads it back", async () => {
      const log = { requestId: "r1", accountId: "acme", requestJson: '{"model":"tiny"}', responseText: "hello ✓", createdAtMs: T0 };
      await store.putRequestLog(log);
      await store.putRequestLog({ ...log, responseText: "second" });
      expect(await store.getRequestLog("r1")).toEqual(log);
      expect(await store.getRequestLog("r2")).toBeUndefined();
    });

    it("deletes request logs created before a time and says how many", async () => {
      for (const [id, at] of [
        ["old1", T0],
        ["old2", T0 + 1],
        ["new", T0 + DAY_MS],
      ] as const) {
        await store.putRequestLog({ requestId: id, accountId: "acme", requestJson: "{}", responseText: "", createdAtMs: at });
      }
      expect(await store.deleteRequestLogsBefore(T0 + 2)).toBe(2);
      expect(await store.getRequestLog("old1")).toBeUndefined();
      expect(await store.getRequestLog("old2")).toBeUndefined();
      expect((await store.getRequestLog("new"))?.createdAtMs).toBe(T0 + DAY_MS);
      expect(await store.deleteRequestLogsBefore(T0 + 2)).toBe(0);
    });

    it("says when each account's oldest stored request log was created", async () => {
      expect(await store.oldestRequestLogs()).toEqual(new Map());
      for (const [id, account, at] of [
        ["a2", "acme", T0 + DAY_MS],
        ["a1", "acme", T0 + 5],
        ["b1", "beta", T0 + 7],
      ] as const) {
        await store.putRequestLog({ requestId: id, accountId: account, requestJson: "{}", responseText: "", createdAtMs: at });
      }
      expect(await store.oldestRequestLogs()).toEqual(
        new Map([
          ["acme", T0 + 5],
          ["beta", T0 + 7],
        ]),
      );
      await store.deleteRequestLogsBefore(T0 + 6);
      expect(await store.oldestRequestLogs()).toEqual(
        new Map([
          ["acme", T0 + DAY_MS],
          ["beta", T0 + 7],
        ]),
      );
    });
  });
}
