import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeConsoleToken, signConsoleToken, verifyConsoleToken } from "../../services/auth/src/console-token.js";
import { startAuth, testClock } from "./auth-fixtures.js";

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("console tokens", () => {
  const clock = testClock();
  let a: Awaited<ReturnType<typeof startAuth>>;
  const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    a = await startAuth({ clock });
    await a.admin.createAccount({ id: "acme" }, a.asAdmin);
    await a.admin.createAccount({ id: "beta" }, a.asAdmin);
  });
  afterAll(async () => {
    await a?.stop();
  });

  it("are signed: a changed payload, another admin token or an expired token is refused", () => {
    const token = signConsoleToken({ account: "acme", expiresAtMs: 2_000 }, "mesh-admin-x");
    expect(verifyConsoleToken(token, "mesh-admin-x", 1_000)).toEqual({ account: "acme", expiresAtMs: 2_000 });
    expect(verifyConsoleToken(token, "mesh-admin-y", 1_000)).toBeUndefined();
    expect(verifyConsoleToken(token, "mesh-admin-x", 2_000)).toBeUndefined();
    const [, signature] = token.split(".");
    const forged = `mesh-console-${Buffer.from(JSON.stringify({ a: "beta", exp: 2_000 })).toString("base64url")}.${signature}`;
    expect(decodeConsoleToken(forged)?.account).toBe("beta");
    expect(verifyConsoleToken(forged, "mesh-admin-x", 1_000)).toBeUndefined();
  });

  it("are issued only with the admin token, for an account that exists, within the longest lifetime", async () => {
    const { token, expiresAtMs } = await a.admin.issueConsoleToken({ accountId: "acme", ttlMs: 60_000n }, a.asAdmin);
    expect(token).toMatch(/^mesh-console-/);
    expect(Number(expiresAtMs)).toBe(clock.t + 60_000);
    expect(await codeOf(a.admin.issueConsoleToken({ accountId: "acme" }, as(token)))).toBe(Code.PermissionDenied);
    expect(await codeOf(a.admin.issueConsoleToken({ accountId: "nobody" }, a.asAdmin))).toBe(Code.NotFound);
    expect(await codeOf(a.admin.issueConsoleToken({ accountId: "acme", ttlMs: 8n * 86_400_000n }, a.asAdmin))).toBe(Code.InvalidArgument);
    expect(await codeOf(a.admin.listKeys({}, as(`${token.slice(0, -2)}xx`)))).toBe(Code.Unauthenticated);
  });

  it("scope every admin call to their account", async () => {
    const { token } = await a.admin.issueConsoleToken({ accountId: "acme" }, a.asAdmin);
    const betaKey = await a.admin.createKey({ accountId: "beta", name: "beta-key" }, a.asAdmin);
    const own = await a.admin.createKey({ name: "mine" }, as(token));
    expect(own.keyInfo!.accountId).toBe("acme");
    const { keys } = await a.admin.listKeys({}, as(token));
    expect(keys.map((k) => k.accountId)).toEqual(["acme"]);
    expect(await codeOf(a.admin.listKeys({ accountId: "beta" }, as(token)))).toBe(Code.PermissionDenied);
    expect(await codeOf(a.admin.revokeKey({ id: betaKey.keyInfo!.id }, as(token)))).toBe(Code.NotFound);
    expect(await codeOf(a.admin.rotateKey({ id: betaKey.keyInfo!.id }, as(token)))).toBe(Code.NotFound);
    expect(await codeOf(a.admin.getUsage({ accountId: "beta", groupBy: "day" }, as(token)))).toBe(Code.PermissionDenied);
    expect(await codeOf(a.admin.setAccountRetention({ id: "beta", retention: false }, as(token)))).toBe(Code.PermissionDenied);
    expect(await codeOf(a.admin.createAccount({ id: "gamma" }, as(token)))).toBe(Code.PermissionDenied);
    expect(await codeOf(a.admin.createKey({ admin: true }, as(token)))).toBe(Code.PermissionDenied);
    const { accounts } = await a.admin.listAccounts({}, as(token));
    expect(accounts.map((x) => x.id)).toEqual(["acme"]);
    const { account } = await a.admin.setAccountRetention({ id: "", retention: false }, as(token));
    expect(account).toMatchObject({ id: "acme", retentionOptOut: true });
    expect(await codeOf(a.admin.revokeKey({ id: own.keyInfo!.id }, as(token)))).toBe("ok");
  });

  it("for no account act as the operator, except that they cannot issue tokens", async () => {
    const { token } = await a.admin.issueConsoleToken({}, a.asAdmin);
    const { accounts } = await a.admin.listAccounts({}, as(token));
    expect(accounts.map((x) => x.id)).toEqual(expect.arrayContaining(["acme", "beta"]));
    expect(await codeOf(a.admin.issueConsoleToken({ accountId: "acme" }, as(token)))).toBe(Code.PermissionDenied);
  });
});
