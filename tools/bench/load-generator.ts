/**
 * Runs a list of requests against a target, either open-loop (arrivals drawn
 * from a gamma process, optionally capped in concurrency, like vLLM's
 * benchmark_serving) or closed-loop (a fixed number of concurrent clients,
 * each sending its next request when the last one ends).
 */
import { arrivalOffsets } from "./arrivals.js";
import type { ArrivalProcess } from "./arrivals.js";
import type { RequestResult } from "./metrics.js";
import type { Progress } from "./progress.js";
import type { Rng } from "./random.js";

/** How requests are issued. */
export type LoadShape = { kind: "arrivals"; process: ArrivalProcess; rng: Rng; maxConcurrency?: number } | { kind: "concurrency"; clients: number };

/** The results of a run and its wall time. */
export interface LoadRun {
  results: RequestResult[];
  durationS: number;
}

/** Sends request i; t0 is the run's start (performance.now()). */
export type Sender = (index: number, t0: number) => Promise<RequestResult>;

/** Runs `count` requests through `send` in the given shape. */
export async function runLoad(count: number, shape: LoadShape, send: Sender, progress?: Progress): Promise<LoadRun> {
  const results = new Array<RequestResult>(count);
  const t0 = performance.now();
  const record = (i: number, r: RequestResult) => {
    results[i] = r;
    progress?.tick();
  };
  if (shape.kind === "concurrency") {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        record(i, await send(i, t0));
      }
    };
    await Promise.all(Array.from({ length: Math.min(shape.clients, count) }, worker));
  } else {
    const offsets = arrivalOffsets(count, shape.process, shape.rng);
    const limit = shape.maxConcurrency ?? Infinity;
    let active = 0;
    const waiters: Array<() => void> = [];
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = t0 + offsets[i] * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      while (active >= limit) await new Promise<void>((r) => waiters.push(r));
      active++;
      inflight.push(
        send(i, t0).then((r) => {
          record(i, r);
          active--;
          waiters.shift()?.();
        }),
      );
    }
    await Promise.all(inflight);
  }
  progress?.done();
  return { results, durationS: (performance.now() - t0) / 1000 };
}
