import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/runtime/index.js";
import { build as buildAuth } from "../../services/auth/src/server.js";
import { build as buildEdge } from "../../services/edge/src/server.js";
import { startInProcessMesh } from "../support/in-process-mesh.js";
import type { InProcessMesh } from "../support/in-process-mesh.js";
import { size } from "./reliability-mesh.js";

/** The key's requests-per-minute limit (env R9_RPM). */
const RPM = size("R9_RPM", 100);
/** Requests sent, split over the two edges (env R9_REQUESTS). */
const REQUESTS = size("R9_REQUESTS", 3 * RPM);
const CONCURRENCY = 32;
/** The issue's goal: over-admission at most 1 % of the limit. */
const GOAL_OVER_FRACTION = 0.01;

/**
 * R9: one key's limits enforced across two edges. Both edges (real HTTP
 * servers) share one auth service; a key with an RPM limit gets three
 * times its limit at once, half through each edge, well within one minute.
 */
describe("R9: one key's limits with two edges", () => {
  let mesh: InProcessMesh;
  let auth: Awaited<ReturnType<typeof buildAuth>>;
  let edges: Array<Awaited<ReturnType<typeof buildEdge>>> = [];
  const adminToken = `mesh-admin-${randomBytes(32).toString("base64url")}`;

  beforeAll(async () => {
    // The mesh's auth, with an admin token, shared by both edges and the router (which admits chat on the exact prompt count).
    mesh = await startInProcessMesh({ sequences: 4, adminToken });
    const log = createLogger("r9");
    log.level = "warn";
    auth = mesh.auth;
    for (let i = 0; i < 2; i++) {
      edges.push(
        await buildEdge(
          {
            port: 0,
            host: "127.0.0.1",
            authAddress: `127.0.0.1:${auth.port}`,
            routerAddress: `127.0.0.1:${mesh.router.port}`,
            healthTargets: {},
            requestTimeoutMs: 30_000,
          },
          log,
        ),
      );
    }
  });
  afterAll(async () => {
    for (const edge of edges) await edge.close(1_000);
    await mesh?.stop();
    edges = [];
  });

  it(`admits at most ${RPM} + 1 % of ${REQUESTS} requests through two edges`, async () => {
    const created = await fetch(`http://127.0.0.1:${edges[0].port}/admin/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "r9", rpm: RPM }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const statuses = new Map<number, number>();
    let next = 0;
    const started = Date.now();
    const client = async (): Promise<void> => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const edge = edges[i % 2];
        const res = await fetch(`http://127.0.0.1:${edge.port}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: `r9 ${i}` }], max_tokens: 1 }),
        });
        await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    const seconds = (Date.now() - started) / 1000;
    const admitted = statuses.get(200) ?? 0;
    const over = Math.max(0, admitted - RPM);
    process.stdout.write(
      `R9 two edges, one key at ${RPM} rpm: ${REQUESTS} requests in ${seconds.toFixed(1)} s, answers ${[...statuses].map(([s, n]) => `${n}× ${s}`).join(", ")}; ` +
        `over-admission ${over} (${((over / RPM) * 100).toFixed(1)} % of the limit, goal ≤ ${GOAL_OVER_FRACTION * 100} %)\n`,
    );
    // The whole run inside one window, or the figure means nothing.
    expect(seconds).toBeLessThan(60);
    expect([...statuses.keys()].every((s) => s === 200 || s === 429)).toBe(true);
    expect(over).toBeLessThanOrEqual(Math.floor(RPM * GOAL_OVER_FRACTION));
    // And the limit is not under-admitting either: the key gets what it pays for.
    expect(admitted).toBe(RPM);
  }, 300_000);
});
