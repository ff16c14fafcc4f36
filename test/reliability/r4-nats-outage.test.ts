import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsServerProcess } from "../../lib/nats/nats-server-process.js";
import { failureSummary, steadyLoad } from "./load.js";
import { size, startReliabilityMesh } from "./reliability-mesh.js";
import type { ReliabilityMesh } from "./reliability-mesh.js";
import { completedIds, natsUsage, usageSummary } from "./usage.js";

/** Concurrent clients of the steady load (env R4_CLIENTS). */
const CLIENTS = size("R4_CLIENTS", 8);
/** How long NATS stays down (env R4_OUTAGE_MS; the figure is 30 s, the short form stops it for less). */
const OUTAGE_MS = size("R4_OUTAGE_MS", 8_000);
/** Load before the outage and after NATS is back, in ms (env R4_SETTLE_MS). */
const SETTLE_MS = size("R4_SETTLE_MS", 3_000);
/** How long the replay may take after NATS is back before a missing event counts as lost. */
const REPLAY_WAIT_MS = 60_000;

/**
 * R4: cluster mode (`llm-mesh up --nats`: keys and usage in NATS JetStream)
 * with NATS killed for OUTAGE_MS under steady load, then started again on
 * the same port and store. Auth buffers the usage events it cannot publish
 * and replays them with `Nats-Msg-Id` = request id, so the stream
 * de-duplicates what landed twice. The goal: exactly one usage event in the
 * stream per request that completed, before, during and after the outage.
 */
describe("R4: NATS stopped under load (cluster mode)", () => {
  let dir: string;
  let nats: NatsServerProcess;
  let mesh: ReliabilityMesh;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-rel-nats-"));
    nats = await NatsServerProcess.start({ dir });
    mesh = await startReliabilityMesh({ args: ["--nats", nats.url] });
  });
  afterAll(async () => {
    await mesh?.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`records exactly one usage event per completed request across a ${OUTAGE_MS / 1000} s outage`, async () => {
    const load = steadyLoad(mesh, CLIENTS, 16);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const down = performance.now();
    await nats.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await nats.start();
    const up = performance.now();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const outcomes = await load.stop();
    const replayStart = performance.now();
    const usage = await natsUsage(nats.url, completedIds(outcomes), REPLAY_WAIT_MS);
    const during = outcomes.filter((o) => o.endedAt >= down && o.startedAt <= up);
    const failed = outcomes.filter((o) => o.result !== "ok");
    process.stdout.write(
      `R4 NATS outage ${OUTAGE_MS} ms (${process.env.MESH_TOPOLOGY ?? "split"}): ` +
        `${outcomes.length} requests, ${failed.length} failed (${failureSummary(outcomes)}); ` +
        `${during.length} during the outage, ${during.filter((o) => o.result === "ok").length} of them completed; ` +
        `usage events after replay: ${usageSummary(usage)} (checked ${((performance.now() - replayStart) / 1000).toFixed(1)} s after the load stopped)\n`,
    );
    expect(usage.missing).toEqual([]);
    expect(usage.duplicated).toEqual([]);
  }, 600_000);
});
