/**
 * Request arrival times, as vLLM's benchmark_serving draws them: gaps from a
 * gamma distribution with shape = burstiness and mean 1 / rate. Burstiness 1
 * is a Poisson process (exponential gaps); below 1 is burstier, above 1
 * steadier. Rate Infinity sends every request at once.
 */
import { gamma } from "./random.js";
import type { Rng } from "./random.js";

/** How requests arrive. */
export interface ArrivalProcess {
  /** Requests per second; Infinity = all at time 0. */
  rate: number;
  /** Gamma shape; 1 = Poisson. */
  burstiness: number;
}

/** The gap before the next request, in seconds. */
export function interArrivalSeconds(rng: Rng, process: ArrivalProcess): number {
  if (process.rate === Infinity) return 0;
  if (!(process.rate > 0)) throw new RangeError(`request rate must be > 0, got ${process.rate}`);
  const theta = 1 / (process.rate * process.burstiness);
  return gamma(rng, process.burstiness, theta);
}

/**
 * Send times (seconds from the start) of n requests. The first request goes
 * at 0, like vLLM (which sleeps after each request, not before the first).
 */
export function arrivalOffsets(n: number, process: ArrivalProcess, rng: Rng): number[] {
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    out.push(t);
    t += interArrivalSeconds(rng, process);
  }
  return out;
}
