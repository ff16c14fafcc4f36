import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { until } from "../support/until.js";

/** A GET with the path sent exactly as written (fetch would resolve dot segments first). */
function rawGet(port: number, rawPath: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: rawPath, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("security regressions (issue 17)", () => {
  let mesh: MeshProcess;
  let adminToken: string;
  const admin = (p: string, init: RequestInit = {}) =>
    fetch(`${mesh.url}/admin/v1/${p}`, { ...init, headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" } });

  beforeAll(async () => {
    mesh = await startMeshProcess();
    adminToken = readFileSync(path.join(mesh.dataDir, "admin-token"), "utf8").trim();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it("counts and limits every request under a repeated client-chosen x-request-id", async () => {
    const created = (await (await admin("keys", { method: "POST", body: JSON.stringify({ name: "repeat", rpm: 3 }) })).json()) as { key: string; id: string };
    const statuses: number[] = [];
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${mesh.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${created.key}`, "content-type": "application/json", "x-request-id": "same-id-every-time" },
        body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      });
      await res.arrayBuffer();
      statuses.push(res.status);
      if (res.status === 200) {
        ids.add(res.headers.get("x-request-id")!);
        expect(res.headers.get("x-client-request-id")).toBe("same-id-every-time");
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(ids.size).toBe(3);
    let requests = 0;
    await until(async () => {
      const body = (await (await admin("usage?by=key")).json()) as { data: { group: string; requests: number }[] };
      requests = body.data.find((r) => r.group === created.id)?.requests ?? 0;
      return requests >= 3;
    });
    expect(requests).toBe(3);
  });

  it.each(["/admin/v1/experiments/../keys", "/admin/v1/keys/%2e%2e/accounts", "/admin/v1/keys/%2E%2E%2Faccounts", "/admin/v1/./accounts"])(
    "refuses the admin path %s instead of routing its normalised form",
    async (rawPath) => {
      const res = await rawGet(mesh.port, rawPath, adminToken);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe("invalid_url");
    },
  );
});
