import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import * as path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReliabilityMesh } from "./reliability-mesh.js";
import type { ReliabilityMesh } from "./reliability-mesh.js";

/** Files the operator is meant to read a secret from: the admin token itself (searched for elsewhere, not in it). */
const SECRET_FILES = new Set(["admin-token"]);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? filesUnder(file) : [file];
  });
}

/**
 * R8: every key secret the run used (the bootstrap key, keys created over
 * the admin API, one rotated, the admin token) searched for, after the
 * run, in every file of the data dir (SQLite database, WAL, journals), in
 * every line every service logged (info level), and in the edge's and
 * shards' /metrics. The mesh has no trace exporter, so there are no traces.
 */
describe("R8: no secret in logs, database files or metrics after a run", () => {
  let mesh: ReliabilityMesh;
  beforeAll(async () => {
    mesh = await startReliabilityMesh({ replicas: 1, keepDataDir: true, env: { METRICS_PORT: "1", LOG_LEVEL: "debug" } });
  });
  afterAll(async () => {
    await mesh?.stop();
    if (mesh) rmSync(mesh.dataDir, { recursive: true, force: true });
  });

  it("finds 0 of the run's secrets", async () => {
    const adminToken = readFileSync(path.join(mesh.dataDir, "admin-token"), "utf8").trim();
    const admin = (method: string, route: string, body?: unknown) =>
      fetch(`${mesh.url}/admin/v1/${route}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const secrets = [mesh.apiKey, adminToken];
    const created: Array<{ id: string; key: string }> = [];
    for (let i = 0; i < 3; i++) {
      const res = await admin("POST", "keys", { account: "default", name: `r8-${i}` });
      expect(res.status).toBe(201);
      const key = (await res.json()) as { id: string; key: string };
      created.push(key);
      secrets.push(key.key);
    }
    const rotated = await admin("POST", `keys/${created[0].id}/rotate`, { grace_ms: 0 });
    expect([200, 201]).toContain(rotated.status);
    secrets.push(((await rotated.json()) as { key: string }).key);

    // Traffic that succeeds, fails auth, is revoked, malformed, streamed and cancelled.
    for (const apiKey of secrets.slice(2)) {
      const client = new OpenAI({ baseURL: mesh.baseURL, apiKey, maxRetries: 0 });
      await client.chat.completions.create({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 3 }).catch(() => undefined);
      const stream = await client.chat.completions
        .create({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 3, stream: true })
        .catch(() => undefined);
      if (stream) for await (const _ of stream) void _;
    }
    await admin("POST", `keys/${created[1].id}/revoke`);
    for (const apiKey of secrets) {
      for (const authorization of [
        `Bearer ${apiKey}`,
        `Bearer ${apiKey}x`,
        apiKey,
        `Basic ${Buffer.from(`u:${apiKey}`).toString("base64")}`,
        `Bearer ${apiKey.slice(0, -1)}`,
      ]) {
        await fetch(`${mesh.baseURL}/chat/completions`, {
          method: "POST",
          headers: { authorization, "content-type": "application/json" },
          body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
        }).then((r) => r.text());
      }
      await fetch(`${mesh.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: `{"model":"${apiKey}",`,
      }).then((r) => r.text());
      await fetch(`${mesh.baseURL}/models/${apiKey}`, { headers: { authorization: `Bearer ${apiKey}`, "x-api-key": apiKey } }).then((r) => r.text());
    }

    const metricsTexts = [await (await fetch(`${mesh.url}/metrics`)).text()];
    for (const address of mesh.metrics.values()) metricsTexts.push(await (await fetch(`http://${address}/metrics`)).text());
    await mesh.stop();

    const files = filesUnder(mesh.dataDir).filter((f) => !SECRET_FILES.has(path.basename(f)));
    const places: Array<[string, string]> = [
      ...files.map((f): [string, string] => [path.relative(mesh.dataDir, f), readFileSync(f).toString("latin1")]),
      ["logs", mesh.output.join("\n")],
      ...metricsTexts.map((t, i): [string, string] => [`metrics ${i}`, t]),
    ];
    const found: string[] = [];
    for (const secret of secrets) {
      // The random part alone (a key's last 32 characters) must not appear either, whole or prefixed.
      for (const needle of [secret, secret.slice(-32)])
        for (const [where, text] of places) if (text.includes(needle)) found.push(`${needle.slice(0, 12)}… in ${where}`);
    }
    const bytes = places.reduce((n, [, t]) => n + t.length, 0);
    process.stdout.write(
      `R8 secrets search: ${secrets.length} secrets in ${files.length} data files, ${mesh.output.length} log lines and ${metricsTexts.length} metrics pages (${(bytes / 1e6).toFixed(1)} MB): ${found.length} found\n`,
    );
    expect(files.some((f) => f.endsWith("mesh.db"))).toBe(true);
    expect(mesh.output.length).toBeGreaterThan(20);
    expect(found).toEqual([]);
  }, 300_000);
});
