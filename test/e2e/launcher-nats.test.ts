import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, meshNatsNames } from "../../lib/nats/index.js";
import { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";

describe("llm-mesh up --nats (auth state in NATS JetStream)", () => {
  let dir: string;
  let nats: NatsServerProcess;
  let mesh: MeshProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-up-nats-"));
    nats = await NatsServerProcess.start({ dir });
    mesh = await startMeshProcess({ args: ["--nats", nats.url] });
  });
  afterAll(async () => {
    if (mesh && mesh.child.exitCode === null) await mesh.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("keeps keys in the KV bucket and records a completion's usage once in the usage stream", async () => {
    const client = new OpenAI({ baseURL: `${mesh!.url}/v1`, apiKey: TEST_API_KEY });
    // ignore_eos: random weights may sample end-of-sequence first.
    const request = { model: "tiny-llama", messages: [{ role: "user" as const, content: "hi" }], max_tokens: 4, ignore_eos: true };
    const completion = await client.chat.completions.create(request);
    const names = meshNatsNames();
    const nc = await connectNats({ url: nats.url, name: "inspect" });
    try {
      const kv = await new Kvm(nc).open(names.authBucket);
      const keys: string[] = [];
      for await (const k of await kv.keys("key.>")) keys.push(k);
      expect(keys).toHaveLength(1);
      const jsm = await jetstreamManager(nc);
      // The edge records usage just after the response: wait for it.
      const deadline = Date.now() + 10_000;
      while ((await jsm.streams.info(names.usageStream)).state.messages === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await jsm.streams.info(names.usageStream)).state.messages).toBe(1);
      const stored = await jsm.streams.getMessage(names.usageStream, { seq: 1 });
      expect(stored!.subject).toContain(".usage.default.");
      expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });
});
