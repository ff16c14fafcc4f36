import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import Database from "libsql";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { until } from "../support/until.js";

const run = promisify(execFile);
const MODEL = "tiny-llama";

interface CreatedKey {
  id: string;
  key: string;
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err.status ?? -1;
    throw err;
  }
}

describe("API keys end to end: the CLI, the admin API and the openai SDK against `llm-mesh up`", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-keys-"));
  let mesh: MeshProcess;
  const secrets: string[] = [];
  let logsAfterStop = "";

  const cli = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(process.execPath, ["bin/llm-mesh.js", ...args, "--url", mesh.url, "--data-dir", dataDir], {
      env: { ...process.env, MESH_ADMIN_TOKEN: "" },
    });
    return stdout;
  };
  const createKey = async (...args: string[]): Promise<CreatedKey> => {
    const key = JSON.parse(await cli("keys", "create", "--json", ...args)) as CreatedKey;
    secrets.push(key.key);
    return key;
  };
  const client = (apiKey: string) => new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey, maxRetries: 0 });
  const chat = (apiKey: string, content = "Hello there") =>
    client(apiKey).chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 4, temperature: 0 });

  beforeAll(async () => {
    mesh = await startMeshProcess({ dataDir, env: { LOG_LEVEL: "info" } });
  });

  afterAll(async () => {
    if (mesh && mesh.child.exitCode === null) await mesh.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("creates the admin token on the first start, readable only by its owner", () => {
    const mode = statSync(path.join(dataDir, "admin-token")).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it("create → use → rotate with grace → old fails after grace → revoke → fails", async () => {
    const { id, key } = await createKey("--name", "lifecycle");
    expect(key).toMatch(new RegExp(`^sk-mesh-${id}-`));
    expect((await chat(key)).choices[0].message.role).toBe("assistant");

    const listed = await cli("keys", "list", "--json");
    expect(listed).toContain(id);
    expect(listed).not.toContain(key.slice(-43));

    // Deadlines are taken after the CLI returns, so they are never earlier than the server's.
    // Windows of 10 s: on a loaded 2-core machine the three calls below can take seconds.
    const expiring = await createKey("--name", "short-lived", "--expires", "10s");
    const expiredBy = Date.now() + 10_000;
    const rotated = JSON.parse(await cli("keys", "rotate", id, "--grace", "10s", "--json")) as CreatedKey;
    const graceEndsBy = Date.now() + 10_000;
    secrets.push(rotated.key);
    expect(rotated.id).toBe(id);
    // Within the grace (and before the expiry) all three work; cheap calls keep this well inside it.
    expect(await statusOf(client(key).models.list())).toBe(200);
    expect(await statusOf(client(rotated.key).models.list())).toBe(200);
    expect(await statusOf(client(expiring.key).models.list())).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(expiredBy, graceEndsBy) - Date.now() + 100));
    expect(await statusOf(chat(key))).toBe(401);
    expect(await statusOf(chat(expiring.key))).toBe(401);
    expect(await statusOf(chat(rotated.key))).toBe(200);

    expect(await cli("keys", "revoke", id)).toContain(`Revoked key ${id}`);
    // The push travels on another connection than the CLI's call: allow it a moment, not a TTL.
    await until(async () => (await statusOf(client(rotated.key).models.list())) === 401, 5_000);
  });

  it("limits a key to its models: 403 for others, /v1/models lists only its own", async () => {
    const { key } = await createKey("--models", "some-other-model");
    const err = await chat(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("permission_denied");
    expect((await client(key).models.list()).data).toEqual([]);
    const scoped = await createKey("--models", MODEL);
    expect((await client(scoped.key).models.list()).data.map((m) => m.id)).toEqual([MODEL]);
  });

  it("rate-limits requests per minute exactly, with OpenAI's 429 body and headers", async () => {
    const { key } = await createKey("--rpm", "2", "--tpm", "100000");
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        client(key)
          .chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 })
          .withResponse()
          .then(({ response }) => ({ status: 200, headers: response.headers, error: undefined }))
          .catch((e: InstanceType<typeof OpenAI.APIError>) => ({ status: e.status, headers: e.headers, error: e })),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toHaveLength(2);
    expect(limited).toHaveLength(4);
    const refused = limited[0];
    expect(refused.error).toMatchObject({ code: "rate_limit_exceeded", type: "requests" });
    expect(refused.headers!.get("x-ratelimit-limit-requests")).toBe("2");
    expect(refused.headers!.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(refused.headers!.get("x-ratelimit-reset-requests")).toMatch(/^(\d+m)?[\d.]+m?s$/);
    expect(Number(refused.headers!.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers!.get("x-ratelimit-limit-tokens")).toBe("100000");
    expect(ok[0].headers!.get("x-ratelimit-limit-requests")).toBe("2");
    expect(ok[0].headers!.get("x-ratelimit-remaining-tokens")).toMatch(/^\d+$/);
  });

  it("records usage once per request, equal to the usage in the responses", async () => {
    const { id, key } = await createKey("--name", "metered");
    const completions = [await chat(key, "one"), await chat(key, "two two"), await chat(key, "three three three")];
    const prompt = completions.reduce((s, c) => s + c.usage!.prompt_tokens, 0);
    const completion = completions.reduce((s, c) => s + c.usage!.completion_tokens, 0);
    let row: { group: string; requests: number; prompt_tokens: number; completion_tokens: number } | undefined;
    await until(async () => {
      const rows = JSON.parse(await cli("usage", "--by", "key", "--json")) as (typeof row)[];
      row = rows.find((r) => r!.group === id);
      return row?.requests === 3;
    });
    expect(row).toMatchObject({ requests: 3, prompt_tokens: prompt, completion_tokens: completion });
    const byModel = JSON.parse(await cli("usage", "--by", "model", "--json")) as { group: string }[];
    expect(byModel.map((r) => r.group)).toContain(MODEL);
  });

  it("stores request content for a retaining account and none for one that opted out", async () => {
    expect(await cli("accounts", "create", "private")).toContain("private");
    expect(await cli("accounts", "set", "private", "--retention", "off")).toContain("retention off");
    const accounts = JSON.parse(await cli("accounts", "list", "--json")) as { id: string; retention: boolean }[];
    expect(accounts.find((a) => a.id === "private")?.retention).toBe(false);
    const priv = await createKey("--account", "private");
    const kept = await createKey("--account", "default");
    await chat(priv.key, "a private question");
    await chat(kept.key, "a kept question");
    const db = new Database(path.join(dataDir, "mesh.db"), { readonly: true });
    try {
      await until(async () => Number((db.prepare("SELECT count(*) AS n FROM usage WHERE account_id = 'private'").get() as { n: number }).n) === 1);
      await until(
        async () => Number((db.prepare("SELECT count(*) AS n FROM request_logs WHERE request_json LIKE '%a kept question%'").get() as { n: number }).n) === 1,
      );
      const privateLogs = db
        .prepare("SELECT count(*) AS n FROM request_logs WHERE account_id = 'private' OR request_json LIKE '%a private question%'")
        .get() as { n: number };
      expect(Number(privateLogs.n)).toBe(0);
    } finally {
      db.close();
    }
  });

  it("leaves no key secret in the SQLite files or the logs of the run", async () => {
    await mesh.stop();
    logsAfterStop = mesh.output();
    expect(logsAfterStop.length).toBeGreaterThan(0);
    const files = readdirSync(dataDir).filter((f) => f.startsWith("mesh.db"));
    expect(files).toContain("mesh.db");
    const stored = files.map((f) => readFileSync(path.join(dataDir, f)).toString("latin1")).join("\n");
    expect(secrets.length).toBeGreaterThan(5);
    for (const apiKey of secrets) {
      const secret = apiKey.slice(-43);
      expect(stored.includes(secret)).toBe(false);
      expect(logsAfterStop.includes(secret)).toBe(false);
      expect(logsAfterStop.includes(apiKey)).toBe(false);
    }
    const adminToken = readFileSync(path.join(dataDir, "admin-token"), "utf8").trim();
    expect(stored.includes(adminToken)).toBe(false);
    expect(logsAfterStop.includes(adminToken)).toBe(false);
  });
});
