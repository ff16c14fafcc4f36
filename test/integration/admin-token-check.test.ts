import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminTokenCheck } from "../../services/edge/src/admin/admin-token-check.js";
import { HttpError } from "../../services/edge/src/openai/errors.js";
import { startAuth } from "./auth-fixtures.js";

const request = (authorization: string) => ({ headers: { authorization } }) as unknown as IncomingMessage;

async function outcome(check: AdminTokenCheck, authorization: string): Promise<"ok" | number> {
  try {
    await check.require(request(authorization));
    return "ok";
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

describe("the edge's admin token check, answered by auth's CheckAdmin", () => {
  let a: Awaited<ReturnType<typeof startAuth>>;

  beforeAll(async () => {
    a = await startAuth();
    await a.admin.createAccount({ id: "acme" }, a.asAdmin);
  });
  afterAll(async () => {
    await a?.stop();
  });

  it("accepts the admin token and an admin console session", async () => {
    expect(await outcome(new AdminTokenCheck(a.admin), `Bearer ${a.adminToken}`)).toBe("ok");
    const { token } = await a.admin.issueConsoleToken({ accountId: "" }, a.asAdmin);
    expect(await outcome(new AdminTokenCheck(a.admin), `Bearer ${token}`)).toBe("ok");
  });

  it("refuses with 401 another admin token, a console token scoped to one account, and API keys", async () => {
    const other = `Bearer mesh-admin-${"A".repeat(43)}`;
    expect(await outcome(new AdminTokenCheck(a.admin), other)).toBe(401);
    const { token } = await a.admin.issueConsoleToken({ accountId: "acme" }, a.asAdmin);
    expect(await outcome(new AdminTokenCheck(a.admin), `Bearer ${token}`)).toBe(401);
    expect(await outcome(new AdminTokenCheck(a.admin), "Bearer sk-mesh-not-an-admin-token")).toBe(401);
  });
});
