import * as http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/runtime/index.js";
import { build as buildEdge } from "../../services/edge/src/server.js";
import { startAuth, testClock } from "./auth-fixtures.js";

/** A raw HTTP/1.1 request, so headers can carry what fetch refuses to send. */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "GET", headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the edge's authentication and admin API", () => {
  const clock = testClock();
  let a: Awaited<ReturnType<typeof startAuth>>;
  let edge: Awaited<ReturnType<typeof buildEdge>>;
  let url: string;
  const admin = (method: string, route: string, body?: unknown, token?: string) =>
    fetch(`${url}/admin/v1/${route}`, {
      method,
      headers: { authorization: `Bearer ${token ?? a.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    a = await startAuth({ clock });
    const log = createLogger("edge-test");
    log.level = "silent";
    // No router: nothing here reaches a model.
    edge = await buildEdge(
      { port: 0, host: "127.0.0.1", authAddress: a.address, routerAddress: "127.0.0.1:1", healthTargets: {}, requestTimeoutMs: 5_000 },
      log,
    );
    url = `http://127.0.0.1:${edge.port}`;
  });
  afterAll(async () => {
    await edge?.close(500);
    await a?.stop();
  });

  it("manages accounts and keys over /admin/v1 and never lists a secret", async () => {
    const account = await admin("POST", "accounts", { id: "team", name: "Team" });
    expect(account.status).toBe(201);
    expect(await account.json()).toMatchObject({ id: "team", retention: true });
    const created = await admin("POST", "keys", { account: "team", name: "ci", models: ["m1"], rpm: 3 });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string; models: string[]; rpm: number };
    expect(key).toMatchObject({ models: ["m1"], rpm: 3 });
    expect(key.key).toMatch(new RegExp(`^sk-mesh-${key.id}-`));
    const list = await (await admin("GET", "keys?account=team")).text();
    expect(list).toContain(key.id);
    expect(list).not.toContain(key.key.slice(-43));
    const optOut = await admin("PATCH", "accounts/team", { retention: false });
    expect(await optOut.json()).toMatchObject({ id: "team", retention: false });
    const rotated = (await (await admin("POST", `keys/${key.id}/rotate`, { grace_ms: 1_000 })).json()) as { key: string; previous_secret_valid_until: string };
    expect(rotated.key).not.toBe(key.key);
    expect(Date.parse(rotated.previous_secret_valid_until)).toBe(clock.t + 1_000);
    const revoked = await admin("POST", `keys/${key.id}/revoke`);
    expect(((await revoked.json()) as { revoked_at: string | null }).revoked_at).not.toBeNull();
    const usage = await admin("GET", "usage?by=model&from=2025-01-01");
    expect(await usage.json()).toMatchObject({ object: "list", group_by: "model", data: [] });
  });

  it("answers admin mistakes with OpenAI-shaped errors", async () => {
    expect((await admin("POST", "accounts", { id: "team" })).status).toBe(409);
    expect((await admin("POST", "keys/abcdefabcdef/revoke")).status).toBe(404);
    const bad = await admin("POST", "keys", { rpm: -1 });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { type: "invalid_request_error", param: "rpm" } });
    expect((await admin("GET", "usage?by=week")).status).toBe(400);
    expect((await admin("GET", "nothing-here")).status).toBe(404);
  });

  it("refuses the admin API without the admin token, and with an API key", async () => {
    const { apiKey } = await a.admin.createKey({ name: "not-admin" }, a.asAdmin);
    for (const token of [apiKey, "", "mesh-admin-" + "x".repeat(43)]) {
      const res = await admin("GET", "keys", undefined, token);
      expect(res.status).toBe(401);
      const text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ error: { code: expect.stringMatching(/invalid_admin_token/) } });
      if (token) expect(text).not.toContain(token);
    }
    expect((await fetch(`${url}/admin/v1/keys`)).status).toBe(401);
  });

  it("answers every bad key with a fast JSON 401 that echoes nothing", async () => {
    const good = await a.admin.createKey({ name: "good" }, a.asAdmin);
    const wrongSecret = good.apiKey.slice(0, -4) + (good.apiKey.endsWith("AAAA") ? "BBBB" : "AAAA");
    const revoked = await a.admin.createKey({ name: "revoked" }, a.asAdmin);
    await a.admin.revokeKey({ id: revoked.keyInfo!.id }, a.asAdmin);
    const expired = await a.admin.createKey({ name: "expired", ttlMs: 1_000n }, a.asAdmin);
    clock.t += 1_000;
    const cases: [string, Record<string, string>][] = [
      ["no header", {}],
      ["empty Bearer", { authorization: "Bearer " }],
      ["10 KB header", { authorization: `Bearer sk-${"a".repeat(10_240)}` }],
      ["non-ASCII", { authorization: "Bearer sk-\u00e9t\u00e9-0123456789abcdefghijklmnop" }],
      ["wrong secret", { authorization: `Bearer ${wrongSecret}` }],
      ["revoked", { authorization: `Bearer ${revoked.apiKey}` }],
      ["expired", { authorization: `Bearer ${expired.apiKey}` }],
    ];
    for (const [name, headers] of cases) {
      const res = await rawGet(edge.port, "/v1/models", headers);
      expect(res.status, name).toBe(401);
      expect(res.headers["content-type"], name).toBe("application/json");
      const body = JSON.parse(res.body) as { error: { message: string; type: string; code: string } };
      expect(body.error, name).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
      expect(res.body, name).not.toMatch(/ at .*\.(js|ts):\d+/);
      const presented = headers.authorization?.replace(/^Bearer /, "");
      if (presented) expect(res.body, name).not.toContain(presented.slice(-20));
    }
  });
});
