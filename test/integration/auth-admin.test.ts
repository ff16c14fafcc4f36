import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuth, testClock } from "./auth-fixtures.js";

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("auth KeyAdminService", () => {
  const clock = testClock();
  let a: Awaited<ReturnType<typeof startAuth>>;

  beforeAll(async () => {
    a = await startAuth({ clock });
  });
  afterAll(async () => {
    await a?.stop();
  });

  it("refuses calls without the admin token, with a wrong one, and with an API key", async () => {
    const { apiKey } = await a.admin.createKey({ name: "k" }, a.asAdmin);
    expect(await codeOf(a.admin.listKeys({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(a.admin.listKeys({}, { headers: { authorization: `Bearer ${a.adminToken.slice(0, -1)}x` } }))).toBe(Code.Unauthenticated);
    expect(await codeOf(a.admin.listKeys({}, { headers: { authorization: `Bearer ${apiKey}` } }))).toBe(Code.Unauthenticated);
  });

  it("creates accounts and keys; a key authenticates as its account with its scopes and limits", async () => {
    await a.admin.createAccount({ id: "acme", name: "Acme" }, a.asAdmin);
    expect(await codeOf(a.admin.createAccount({ id: "acme" }, a.asAdmin))).toBe(Code.AlreadyExists);
    expect(await codeOf(a.admin.createKey({ accountId: "nope" }, a.asAdmin))).toBe(Code.NotFound);
    const created = await a.admin.createKey(
      { accountId: "acme", name: "ci", allowedModels: ["m1"], limits: { requestsPerMinute: 5, tokensPerMinute: 500 } },
      a.asAdmin,
    );
    expect(created.apiKey).toMatch(/^sk-mesh-[a-z0-9]{12}-[A-Za-z0-9_-]{43}$/);
    expect(created.apiKey).toContain(created.keyInfo!.id);
    const { principal } = await a.auth.authenticate({ apiKey: created.apiKey });
    expect(principal).toMatchObject({ keyId: created.keyInfo!.id, accountId: "acme", keyName: "ci", allowedModels: ["m1"] });
    expect(principal!.limits).toMatchObject({ requestsPerMinute: 5, tokensPerMinute: 500 });
    const { accounts } = await a.admin.listAccounts({}, a.asAdmin);
    expect(accounts.map((x) => x.id)).toContain("acme");
  });

  it("lists keys without their secrets", async () => {
    const created = await a.admin.createKey({ name: "secret-check" }, a.asAdmin);
    const secret = created.apiKey.split("-").slice(3).join("-");
    const { keys } = await a.admin.listKeys({}, a.asAdmin);
    const listed = JSON.stringify(keys, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
    expect(listed).toContain(created.keyInfo!.id);
    expect(listed).not.toContain(secret);
  });

  it("rotates with a grace period: both secrets work until it ends, then only the new one", async () => {
    const { apiKey: oldKey, keyInfo } = await a.admin.createKey({ name: "rotating" }, a.asAdmin);
    const rotated = await a.admin.rotateKey({ id: keyInfo!.id, graceMs: 60_000n }, a.asAdmin);
    expect(rotated.apiKey).not.toBe(oldKey);
    expect(rotated.keyInfo!.id).toBe(keyInfo!.id);
    const old = await a.auth.authenticate({ apiKey: oldKey });
    expect(Number(old.validUntilMs)).toBe(clock.t + 60_000);
    expect(await codeOf(a.auth.authenticate({ apiKey: rotated.apiKey }))).toBe("ok");
    clock.t += 60_000;
    expect(await codeOf(a.auth.authenticate({ apiKey: oldKey }))).toBe(Code.Unauthenticated);
    expect(await codeOf(a.auth.authenticate({ apiKey: rotated.apiKey }))).toBe("ok");
    // Without grace the old secret stops at once.
    const again = await a.admin.rotateKey({ id: keyInfo!.id }, a.asAdmin);
    expect(await codeOf(a.auth.authenticate({ apiKey: rotated.apiKey }))).toBe(Code.Unauthenticated);
    expect(await codeOf(a.auth.authenticate({ apiKey: again.apiKey }))).toBe("ok");
  });

  it("revokes keys and refuses expired ones", async () => {
    const { apiKey, keyInfo } = await a.admin.createKey({ name: "doomed" }, a.asAdmin);
    await a.admin.revokeKey({ id: keyInfo!.id }, a.asAdmin);
    expect(await codeOf(a.auth.authenticate({ apiKey }))).toBe(Code.Unauthenticated);
    expect(await codeOf(a.admin.rotateKey({ id: keyInfo!.id }, a.asAdmin))).toBe(Code.FailedPrecondition);
    const expiring = await a.admin.createKey({ name: "short", ttlMs: 1_000n }, a.asAdmin);
    const ok = await a.auth.authenticate({ apiKey: expiring.apiKey });
    expect(Number(ok.validUntilMs)).toBe(clock.t + 1_000);
    clock.t += 1_000;
    const err = await a.auth.authenticate({ apiKey: expiring.apiKey }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    expect((err as ConnectError).rawMessage).toBe("API key expired");
  });

  it("never echoes a whole key given where an id belongs", async () => {
    const { apiKey } = await a.admin.createKey({ name: "pasted" }, a.asAdmin);
    const err = ConnectError.from(await a.admin.revokeKey({ id: apiKey }, a.asAdmin).catch((e: unknown) => e));
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).not.toContain(apiKey.slice(-20));
  });

  it("records usage once per request id and aggregates it by day, model and key", async () => {
    const { keyInfo } = await a.admin.createKey({ accountId: "acme", name: "usage" }, a.asAdmin);
    const base = { keyId: keyInfo!.id, accountId: "acme", backend: "b", status: 1, createdAtMs: BigInt(Date.UTC(2025, 0, 31, 12)) };
    expect((await a.auth.recordUsage({ ...base, requestId: "u1", model: "m1", promptTokens: 10, completionTokens: 5 })).recorded).toBe(true);
    expect((await a.auth.recordUsage({ ...base, requestId: "u1", model: "m1", promptTokens: 10, completionTokens: 5 })).recorded).toBe(false);
    await a.auth.recordUsage({ ...base, requestId: "u2", model: "m2", promptTokens: 7, completionTokens: 3 });
    const byModel = await a.admin.getUsage({ accountId: "acme", groupBy: "model" }, a.asAdmin);
    expect(byModel.rows.map((r) => [r.group, Number(r.requests), Number(r.promptTokens), Number(r.completionTokens)])).toEqual([
      ["m1", 1, 10, 5],
      ["m2", 1, 7, 3],
    ]);
    const byDay = await a.admin.getUsage(
      { accountId: "acme", groupBy: "day", fromMs: BigInt(Date.UTC(2025, 0, 31)), toMs: BigInt(Date.UTC(2025, 1, 1)) },
      a.asAdmin,
    );
    expect(byDay.rows.map((r) => [r.group, Number(r.requests)])).toEqual([["2025-01-31", 2]]);
    expect(await codeOf(a.admin.getUsage({ groupBy: "week" }, a.asAdmin))).toBe(Code.InvalidArgument);
  });

  it("records a batch of usage in one call, each request id once, repeats across and within batches ignored", async () => {
    const { keyInfo } = await a.admin.createKey({ accountId: "acme", name: "batch" }, a.asAdmin);
    const base = { keyId: keyInfo!.id, accountId: "acme", backend: "b", model: "batch-model", status: 1, promptTokens: 4, completionTokens: 2 };
    const first = await a.auth.recordUsageBatch({
      records: [
        { ...base, requestId: "b1" },
        { ...base, requestId: "b2" },
        { ...base, requestId: "b1" },
      ],
    });
    expect(first.recorded).toBe(2);
    const again = await a.auth.recordUsageBatch({
      records: [
        { ...base, requestId: "b2" },
        { ...base, requestId: "b3" },
      ],
    });
    expect(again.recorded).toBe(1);
    const byKey = await a.admin.getUsage({ accountId: "acme", groupBy: "key" }, a.asAdmin);
    expect(Number(byKey.rows.find((r) => r.group === keyInfo!.id)?.requests)).toBe(3);
  });
});
