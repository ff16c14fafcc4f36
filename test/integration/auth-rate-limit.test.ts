import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuth, testClock } from "./auth-fixtures.js";

describe("auth admission under rate limits", () => {
  const clock = testClock();
  let a: Awaited<ReturnType<typeof startAuth>>;

  beforeAll(async () => {
    a = await startAuth({ clock });
  });
  afterAll(async () => {
    await a?.stop();
  });

  it("lets exactly 10 of 50 concurrent requests through a 10 requests/min limit", async () => {
    const { keyInfo } = await a.admin.createKey({ name: "rpm", limits: { requestsPerMinute: 10 } }, a.asAdmin);
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => a.auth.admit({ keyId: keyInfo!.id, requestId: `c${i}` })));
    const admitted = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => ConnectError.from(r.reason));
    expect(admitted).toHaveLength(10);
    expect(refused).toHaveLength(40);
    expect(new Set(refused.map((e) => e.code))).toEqual(new Set([Code.ResourceExhausted]));
    expect(refused[0].metadata.get("x-mesh-error-reason")).toBe("rate_limit_exceeded");
    expect(refused[0].metadata.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(refused[0].metadata.get("x-ratelimit-limit-requests")).toBe("10");
    // A minute later the window has room again.
    clock.t += 60_000;
    await expect(a.auth.admit({ keyId: keyInfo!.id, requestId: "later" })).resolves.toBeDefined();
  });

  it("reserves tokens at admission and corrects the reservation when usage is recorded", async () => {
    const { keyInfo } = await a.admin.createKey({ name: "tpm", limits: { tokensPerMinute: 100 } }, a.asAdmin);
    const id = keyInfo!.id;
    const first = await a.auth.admit({ keyId: id, requestId: "t1", reserveTokens: 90 });
    expect(first.status).toMatchObject({ limitTokens: 100, remainingTokens: 10 });
    const refused = ConnectError.from(await a.auth.admit({ keyId: id, requestId: "t2", reserveTokens: 20 }).catch((e: unknown) => e));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.metadata.get("x-mesh-error-param")).toBe("tokens");
    await a.auth.recordUsage({ requestId: "t1", keyId: id, accountId: "default", model: "m", promptTokens: 12, completionTokens: 8, status: 1 });
    const second = await a.auth.admit({ keyId: id, requestId: "t2", reserveTokens: 20 });
    expect(second.status!.remainingTokens).toBe(60);
  });

  it("refuses admission for revoked keys", async () => {
    const { keyInfo } = await a.admin.createKey({ name: "gone", limits: { requestsPerMinute: 1 } }, a.asAdmin);
    await a.admin.revokeKey({ id: keyInfo!.id }, a.asAdmin);
    const err = ConnectError.from(await a.auth.admit({ keyId: keyInfo!.id, requestId: "x" }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.Unauthenticated);
  });
});
