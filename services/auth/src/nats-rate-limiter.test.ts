import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../../../lib/nats/index.js";
import { NatsServerProcess } from "../../../lib/nats/nats-server-process.js";
import { NatsRateLimiter, RATE_SLOT_MS } from "./nats-rate-limiter.js";
import { openRateLimiter } from "./open-rate-limiter.js";
import { RATE_WINDOW_MS, RateLimiter } from "./rate-limiter.js";

let run = 0;

describe("NATS rate limiter (shared by auth replicas)", () => {
  let nats: NatsServerProcess;
  let dir: string;
  const limiters: NatsRateLimiter[] = [];

  /** One "replica": its own connection to the shared NATS. */
  async function replica(bucket: string, now?: () => number, extra: { decisionBudgetMs?: number } = {}): Promise<NatsRateLimiter> {
    const nc = await connectNats({ url: nats.url, name: "rl-test", reconnectWaitMs: 100 });
    const limiter = await NatsRateLimiter.open({ nc, bucket, now, ownsConnection: true, ...extra });
    limiters.push(limiter);
    return limiter;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mesh-nats-rl-"));
    nats = await NatsServerProcess.start({ dir });
  });
  afterEach(async () => {
    if (!nats.running) await nats.start();
    await Promise.all(limiters.splice(0).map((l) => l.close()));
  });
  afterAll(async () => {
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is what auth opens with MESH_STORE=nats, on bucket <prefix>_ratelimits; SQLite keeps the in-memory one", async () => {
    const prefix = `p${++run}`;
    expect(await openRateLimiter({ dataDir: dir }, undefined as never, Date.now)).toBeInstanceOf(RateLimiter);
    const log = { info: () => undefined, warn: () => undefined } as never;
    const limiter = await openRateLimiter({ dataDir: dir, store: "nats", natsUrl: nats.url, natsPrefix: prefix }, log, Date.now);
    limiters.push(limiter as NatsRateLimiter);
    expect(limiter).toBeInstanceOf(NatsRateLimiter);
    const nc = await connectNats({ url: nats.url, name: "rl-test-check" });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(`KV_${prefix}_ratelimits`);
      expect(info.config.max_age).toBe(2 * RATE_WINDOW_MS * 1_000_000);
    } finally {
      await nc.close();
    }
  });

  it("admits exactly the limit across two replicas under 50 concurrent admissions", async () => {
    const bucket = `rl${++run}_ratelimits`;
    const [a, b] = [await replica(bucket), await replica(bucket)];
    // One earlier grant, so the entry exists and every write is an update at a revision.
    expect((await a.admit("k", "warm", 0, { requestsPerMinute: 100, tokensPerMinute: 0 })).admitted).toBe(true);
    const limits = { requestsPerMinute: 11, tokensPerMinute: 0 };
    // Staggered a little, so the replicas interleave over many rounds instead of one batch each.
    const admit = async (i: number) => {
      await new Promise((r) => setTimeout(r, (i * 7) % 20));
      return (i % 2 ? a : b).admit("k", `r${i}`, 0, limits);
    };
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => admit(i)));
    expect(results.filter((r) => r.admitted)).toHaveLength(10);
    expect(results.filter((r) => !r.admitted).every((r) => r.exceeded === "requests" && r.status.remainingRequests === 0)).toBe(true);
    // Neither replica failed open: every decision went through NATS.
    expect(a.failedOpen + b.failedOpen).toBe(0);
    expect((await a.status("k", limits)).remainingRequests).toBe(0);
    // Another key is untouched.
    expect((await b.admit("other", "x", 0, limits)).admitted).toBe(true);
  });

  it("reserves tokens on one replica and corrects them from usage recorded on the other", async () => {
    const bucket = `rl${++run}_ratelimits`;
    const [a, b] = [await replica(bucket), await replica(bucket)];
    const limits = { requestsPerMinute: 0, tokensPerMinute: 100 };
    expect((await a.admit("k", "q1", 80, limits)).admitted).toBe(true);
    const refused = await b.admit("k", "q2", 30, limits);
    expect(refused).toMatchObject({ admitted: false, exceeded: "tokens" });
    expect(refused.status.remainingTokens).toBe(20);
    await b.settle("q1", 50, "k");
    // A second settle of the same request changes nothing.
    await a.settle("q1", 0, "k");
    expect((await a.admit("k", "q2", 30, limits)).admitted).toBe(true);
    expect((await b.status("k", limits)).remainingTokens).toBe(20);
  });

  it("lets grants leave the window by the injected clock", async () => {
    const bucket = `rl${++run}_ratelimits`;
    const clock = { t: 5_000_000 };
    const now = () => clock.t;
    const [a, b] = [await replica(bucket, now), await replica(bucket, now)];
    const limits = { requestsPerMinute: 2, tokensPerMinute: 0 };
    expect((await a.admit("k", "1", 0, limits)).admitted).toBe(true);
    clock.t += 10_000;
    expect((await b.admit("k", "2", 0, limits)).admitted).toBe(true);
    const refused = await a.admit("k", "3", 0, limits);
    expect(refused.admitted).toBe(false);
    // The first grant counts for a whole window plus at most one sub-window, never less.
    expect(refused.status.resetRequestsMs).toBe(RATE_WINDOW_MS + RATE_SLOT_MS - 10_000);
    clock.t += RATE_WINDOW_MS - 10_000;
    expect((await b.admit("k", "4", 0, limits)).admitted).toBe(false);
    clock.t += RATE_SLOT_MS;
    expect((await b.admit("k", "5", 0, limits)).admitted).toBe(true);
    expect((await a.admit("k", "6", 0, limits)).admitted).toBe(false);
  });

  it("forgets a revoked key on every replica", async () => {
    const bucket = `rl${++run}_ratelimits`;
    const [a, b] = [await replica(bucket), await replica(bucket)];
    const limits = { requestsPerMinute: 1, tokensPerMinute: 0 };
    expect((await a.admit("k", "1", 0, limits)).admitted).toBe(true);
    expect((await b.admit("k", "2", 0, limits)).admitted).toBe(false);
    await a.forget("k");
    expect((await b.admit("k", "3", 0, limits)).admitted).toBe(true);
  });

  it("fails open while NATS is unreachable, and limits again once it is back", async () => {
    const bucket = `rl${++run}_ratelimits`;
    const a = await replica(bucket, undefined, { decisionBudgetMs: 300 });
    const limits = { requestsPerMinute: 1, tokensPerMinute: 0 };
    expect((await a.admit("k", "1", 0, limits)).admitted).toBe(true);
    await nats.stop();
    const during = await Promise.all([a.admit("k", "2", 0, limits), a.admit("k", "3", 0, limits)]);
    expect(during.every((r) => r.admitted)).toBe(true);
    expect(a.failedOpen).toBe(2);
    await a.settle("1", 5, "k");
    await nats.start();
    // The count from before the outage is still there (file storage): once NATS answers, "1" still fills the limit.
    const deadline = Date.now() + 10_000;
    let after = await a.admit("k", "4", 0, limits);
    while (a.failedOpen > 2 && Date.now() < deadline) {
      a.failedOpen = 2;
      await new Promise((r) => setTimeout(r, 100));
      after = await a.admit("k", "4", 0, limits);
    }
    expect(after).toMatchObject({ admitted: false, exceeded: "requests" });
  });
});
