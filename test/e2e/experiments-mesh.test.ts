import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

const run = promisify(execFile);

const CATALOG = `
models:
  - name: ab-model
    backends:
      - { name: fast, engine: sim, decode_ms_per_token: 1, prefill_tokens_per_s: 100000 }
      - { name: slow, engine: sim, decode_ms_per_token: 3, prefill_tokens_per_s: 100000 }
experiments:
  - name: fast-vs-slow
    model: ab-model
    unit: user
    arms:
      - { backend: fast, weight: 50 }
      - { backend: slow, weight: 50 }
`;

describe("an A/B experiment through the whole mesh, seen by the openai SDK", () => {
  let mesh: MeshProcess;
  let client: OpenAI;
  const users = Array.from({ length: 24 }, (_, i) => `user-${i}`);
  const armOf = new Map<string, string>();

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-ab-"));
    const config = path.join(dir, "mesh.yaml");
    writeFileSync(config, CATALOG);
    mesh = await startMeshProcess({ args: ["--config", config] });
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  async function ask(user: string) {
    const { response, data } = await client.chat.completions
      .create({ model: "ab-model", messages: [{ role: "user", content: "hello" }], max_tokens: 4, user })
      .withResponse();
    return { backend: response.headers.get("x-mesh-backend"), experiment: response.headers.get("x-mesh-experiment"), data };
  }

  it("names the backend and the experiment arm on every response", async () => {
    for (const user of users) {
      const { backend, experiment, data } = await ask(user);
      expect(["fast", "slow"]).toContain(backend);
      expect(experiment).toBe(`fast-vs-slow=${backend}`);
      expect(data.usage?.completion_tokens).toBe(4);
      armOf.set(user, backend!);
    }
    // 24 units split 50/50 by a salted hash: both arms get some.
    expect(new Set(armOf.values()).size).toBe(2);
  });

  it("keeps each user in the same arm across requests", async () => {
    for (const user of users.slice(0, 8)) {
      expect((await ask(user)).backend).toBe(armOf.get(user));
    }
  });

  it("accepts user feedback for a request id and reports every request per arm", async () => {
    const { data } = await ask("feedback-user");
    const res = await fetch(`${mesh.url}/v1/feedback`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ request_id: data.id, metric: "thumbs_up", value: true }),
    });
    expect(res.status).toBe(200);
    const { stdout } = await run(process.execPath, ["bin/llm-mesh.js", "experiments", "report", "fast-vs-slow", "--json", "--url", mesh.url], {
      env: { ...process.env, MESH_DATA_DIR: mesh.dataDir },
    });
    const report = JSON.parse(stdout);
    const arms = report.report?.arms ?? report.arms;
    const total = arms.reduce((sum: number, arm: { requests: number }) => sum + arm.requests, 0);
    expect(total).toBe(users.length + 8 + 1);
  });

  it("refuses a forced arm from a key without the admin scope", async () => {
    const res = await fetch(`${mesh.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json", "x-mesh-force-backend": "slow" },
      body: JSON.stringify({ model: "ab-model", messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
    });
    expect(res.status).toBe(403);
  });
});
