import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchMesh } from "./openai-launcher.js";
import type { LaunchedMesh } from "./openai-launcher.js";

/** Requests per run (env MESH_LOAD_REQUESTS; `npm run test:reliability` runs 20,000). */
const REQUESTS = Number(process.env.MESH_LOAD_REQUESTS ?? 1_000);
const CLIENTS = 64;

/**
 * Sustained load: 64 clients, half streaming, half not, against a real mesh.
 * Before the non-stream path read its router stream to the end, each finished
 * request cancelled its call (an RST_STREAM); past Node's rapid-reset budget
 * the edge→router HTTP/2 session was closed and every call on it failed with 500.
 */
describe("sustained load", () => {
  let mesh: LaunchedMesh;
  beforeAll(async () => {
    mesh = await launchMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it(`answers ${REQUESTS} requests at ${CLIENTS} clients, stream and non-stream, without one failure`, async () => {
    let next = 0;
    const failures: string[] = [];
    const one = async (i: number): Promise<void> => {
      const stream = i % 2 === 0;
      const res = await fetch(`${mesh.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: `request ${i}` }], max_tokens: 2, ignore_eos: true, stream }),
      });
      const text = await res.text();
      if (res.status !== 200) failures.push(`${res.status} ${text.slice(0, 200)}`);
      else if (stream && !text.trimEnd().endsWith("data: [DONE]")) failures.push(`stream without [DONE]: ${text.slice(-200)}`);
      else if (stream && text.includes('"error"')) failures.push(`error event: ${text.slice(-200)}`);
    };
    const client = async (): Promise<void> => {
      for (let i = next++; i < REQUESTS; i = next++) {
        try {
          await one(i);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `sustained load (${process.env.MESH_TOPOLOGY ?? "split"}): ${REQUESTS} requests in ${seconds.toFixed(1)} s, ${failures.length} failed\n`,
    );
    expect(failures.slice(0, 5)).toEqual([]);
    expect(failures).toHaveLength(0);
  }, 600_000);
});
