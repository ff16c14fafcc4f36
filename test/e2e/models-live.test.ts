import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../lib/gguf/index.js";
import { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import { startFakeOpenAI } from "../../tools/fake-openai/index.js";
import type { FakeOpenAI } from "../../tools/fake-openai/index.js";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";

const run = promisify(execFile);
/** Issue 15: an added model is served by every mesh on the store within this bound (no restart). */
const SERVED_WITHIN_MS = 5_000;
/** The single-machine path starts a llama.cpp shard process: generous on a shared 2-core VM. */
const SQLITE_SERVED_WITHIN_MS = 60_000;

/** `llm-mesh models ...` against a mesh, as an operator runs it. */
async function models(mesh: MeshProcess, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ["bin/llm-mesh.js", "models", ...args, "--url", mesh.url, "--data-dir", mesh.dataDir], {
      env: { ...process.env, MESH_ADMIN_TOKEN: "" },
    });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

async function adminFetch(mesh: MeshProcess, method: string, route: string, body?: unknown): Promise<Response> {
  const { readAdminToken } = await import("../../services/auth/src/admin-token.js");
  const token = await readAdminToken(mesh.dataDir);
  return fetch(`${mesh.url}/admin/v1/${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Polls `check` until it returns true or `ms` pass; resolves the time it took, or throws. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function chatStatus(mesh: MeshProcess, model: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${mesh.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
  });
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: body.error?.code };
}

describe("models added and removed while serving, one machine (SQLite)", () => {
  let dir: string;
  let mesh: MeshProcess;
  let modelFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-models-"));
    modelFile = path.join(dir, "second.gguf");
    await writeTinyModel(modelFile, { seed: 7 });
    mesh = await startMeshProcess();
  });
  afterAll(async () => {
    await mesh?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("adds a GGUF model through the CLI, serves it to the openai SDK, and removes it", async () => {
    const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const added = await models(mesh, "add", "second", "--model", modelFile, "--sequences", "2");
    expect(added.code, added.out).toBe(0);
    expect(added.out).toContain("second");
    await within(SQLITE_SERVED_WITHIN_MS, "the added model served", async () => (await chatStatus(mesh, "second")).status === 200);
    // Random weights may sample end-of-sequence first: ignore_eos makes the 4 tokens certain.
    const request = { model: "second", messages: [{ role: "user" as const, content: "hello" }], max_tokens: 4, ignore_eos: true };
    const completion = await client.chat.completions.create(request);
    expect(completion.choices[0].message.role).toBe("assistant");
    expect(completion.usage!.completion_tokens).toBe(4);
    const listed = await models(mesh, "list", "--json");
    const rows = JSON.parse(listed.out) as { id: string; source: string; served: boolean }[];
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: "tiny-llama", source: "catalog" }),
        expect.objectContaining({ id: "second", source: "added", served: true }),
      ]),
    );
    expect((await client.models.list()).data.map((m) => m.id)).toContain("second");

    const refused = await models(mesh, "remove", "tiny-llama");
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain("catalog file");
    const removed = await models(mesh, "remove", "second");
    expect(removed.code, removed.out).toBe(0);
    await within(5_000, "the removed model refused", async () => (await chatStatus(mesh, "second")).status === 404);
    expect(await chatStatus(mesh, "second")).toEqual({ status: 404, code: "model_not_found" });
    // The catalog's model is untouched.
    expect((await chatStatus(mesh, "tiny-llama")).status).toBe(200);
    // Removing it twice: the second time there is nothing to remove.
    const again = await models(mesh, "remove", "second");
    expect(again.code).not.toBe(0);
    expect(again.out).toContain("no added model");
  }, 180_000);

  it("refuses bad models with clear errors and nothing stored", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ name: "x", model: path.join(dir, "missing.gguf") }, 400, "no such file"],
      [{ name: "x", model: dir.endsWith("/") ? dir : `${dir}/` }, 400, ".gguf"],
      [{ name: "x", model: path.join(dir, "..", path.basename(dir), "second.gguf"), upstream: "http://a/v1" }, 400, "exactly one"],
      [{ name: "x", upstream: "ftp://example.com/v1", tokenizer: modelFile }, 400, "http"],
      [{ name: "x", upstream: "http://127.0.0.1:1/v1" }, 400, "tokenizer"],
      [{ name: "bad name!", model: modelFile }, 400, "name"],
      [{ name: "x".repeat(300), model: modelFile }, 400, "name"],
      [{ name: "x", model: "relative.gguf" }, 400, "absolute"],
      [{ name: "x", model: modelFile, replicas: 1000 }, 400, "replicas"],
      [{ name: "tiny-llama", model: modelFile }, 409, "catalog"],
    ];
    for (const [body, status, text] of cases) {
      const res = await adminFetch(mesh, "POST", "models", body);
      const answer = (await res.json()) as { error: { message: string } };
      expect({ status: res.status, message: answer.error.message }, JSON.stringify(body)).toEqual({ status, message: expect.stringContaining(text) });
    }
    // A non-GGUF file with a .gguf name.
    const fake = path.join(dir, "text.gguf");
    await (await import("node:fs/promises")).writeFile(fake, "not a model");
    const notGguf = await adminFetch(mesh, "POST", "models", { name: "x", model: fake });
    expect(notGguf.status).toBe(400);
    expect(((await notGguf.json()) as { error: { message: string } }).error.message).toContain("not a GGUF");
    // No admin token: 401, nothing stored.
    const anonymous = await fetch(`${mesh.url}/admin/v1/models`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "y", model: modelFile }),
    });
    expect(anonymous.status).toBe(401);
    const list = (await (await adminFetch(mesh, "GET", "models")).json()) as { data: { id: string }[] };
    expect(list.data.map((m) => m.id)).not.toContain("x");
    expect(list.data.map((m) => m.id)).not.toContain("y");
  }, 60_000);
});

describe("models added and removed while serving, two meshes on one NATS", () => {
  let dir: string;
  let nats: NatsServerProcess;
  let fake: FakeOpenAI;
  const meshes: MeshProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-models-nats-"));
    nats = await NatsServerProcess.start({ dir });
    // 40 tokens, 75 ms apart: a stream runs for about 3 s.
    fake = await startFakeOpenAI({ tokens: 40, tokenDelayMs: 75 });
    for (let i = 0; i < 2; i++) meshes.push(await startMeshProcess({ args: ["--nats", nats.url] }));
  });
  afterAll(async () => {
    for (const mesh of meshes) await mesh.stop();
    await fake?.close();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("serves a model added through one mesh on both within 5 s, and a removal stops new requests while a running stream completes", async () => {
    const [a, b] = meshes as [MeshProcess, MeshProcess];
    const tokenizer = path.join(a.dataDir, "tiny-llama.gguf");
    // Timed from the admin call (the CLI's own Node start is not the mesh's latency; the CLI is tested above).
    const addedAt = Date.now();
    const added = await adminFetch(a, "POST", "models", { name: "upstream-live", upstream: fake.url, upstream_model: "fake-model", tokenizer });
    expect(added.status, await added.clone().text()).toBe(201);
    const times = await Promise.all(
      meshes.map(async (m) => {
        await within(SERVED_WITHIN_MS, "the added model served", async () => (await chatStatus(m, "upstream-live")).status === 200);
        return Date.now() - addedAt;
      }),
    );
    process.stdout.write(
      `added model served by both meshes ${times.map((t) => `${t} ms`).join(" and ")} after the admin call (bound ${SERVED_WITHIN_MS} ms)\n`,
    );

    // A stream on mesh B, under way when mesh A removes the model.
    const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: TEST_API_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "upstream-live",
      messages: [{ role: "user", content: "go" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    const removed = await models(a, "remove", "upstream-live");
    expect(removed.code, removed.out).toBe(0);
    await Promise.all(
      meshes.map((m) => within(SERVED_WITHIN_MS, "the removed model refused", async () => (await chatStatus(m, "upstream-live")).status === 404)),
    );
    for (const m of meshes) expect(await chatStatus(m, "upstream-live")).toEqual({ status: 404, code: "model_not_found" });
    // The stream that was running finishes with every token.
    let text = first.value.choices[0]?.delta.content ?? "";
    let finish: string | null | undefined;
    let usage: { completion_tokens: number } | undefined;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      text += next.value.choices[0]?.delta.content ?? "";
      finish = next.value.choices[0]?.finish_reason ?? finish;
      if (next.value.usage) usage = next.value.usage;
    }
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBe(40);
    expect(text.split("tok").length - 1).toBe(40);
  }, 180_000);
});
