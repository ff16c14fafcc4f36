import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { SlotPool } from "./slot-pool.js";

describe("SlotPool", () => {
  it("grants free slots at once and queues the rest in order", async () => {
    const pool = new SlotPool(1, 2);
    const release1 = await pool.acquire(new AbortController().signal);
    const order: number[] = [];
    const second = pool.acquire(new AbortController().signal).then((r) => (order.push(2), r));
    const third = pool.acquire(new AbortController().signal).then((r) => (order.push(3), r));
    expect(pool.load).toEqual({ running: 1, queued: 2, freeSlots: 0 });
    release1();
    (await second)();
    (await third)();
    expect(order).toEqual([2, 3]);
    expect(pool.load).toEqual({ running: 0, queued: 0, freeSlots: 1 });
  });

  it("answers ResourceExhausted when the queue is full", async () => {
    const pool = new SlotPool(1, 0);
    await pool.acquire(new AbortController().signal);
    const err = await pool.acquire(new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.ResourceExhausted);
  });

  it("drops a waiter whose caller went away", async () => {
    const pool = new SlotPool(1, 4);
    const release = await pool.acquire(new AbortController().signal);
    const abort = new AbortController();
    const waiting = pool.acquire(abort.signal).catch((e: ConnectError) => e.code);
    abort.abort();
    expect(await waiting).toBe(Code.Canceled);
    expect(pool.load.queued).toBe(0);
    release();
    expect(pool.load.running).toBe(0);
  });

  it("ignores a second release of the same slot", async () => {
    const pool = new SlotPool(2, 0);
    const release = await pool.acquire(new AbortController().signal);
    release();
    release();
    expect(pool.load.running).toBe(0);
  });
});
