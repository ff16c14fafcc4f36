/**
 * Seeded random numbers for the load generator: the same seed gives the
 * same request sequence (lengths, prompts, arrival times) for every target.
 */

export type { Rng } from "../../lib/random.js";
import type { Rng } from "../../lib/random.js";
/** The load generator's seeded generator: the project's one PRNG. */
export { seededRandom } from "../../lib/random.js";

/** A standard normal draw (Box–Muller). */
export function normal(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/**
 * A Gamma(shape, scale) draw (Marsaglia–Tsang; shape < 1 by the boost
 * Gamma(k) = Gamma(k + 1) · U^(1/k)). Mean shape·scale, variance shape·scale².
 */
export function gamma(rng: Rng, shape: number, scale: number): number {
  if (!(shape > 0) || !(scale > 0)) throw new RangeError(`gamma needs shape > 0 and scale > 0, got ${shape}, ${scale}`);
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng();
    return gamma(rng, shape + 1, scale) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(rng);
    const v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const v = v0 * v0 * v0;
    const u = rng();
    if (u < 1 - 0.0331 * x ** 4) return d * v * scale;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * scale;
  }
}

/** An integer uniformly drawn from [lo, hi] (inclusive). */
export function uniformInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
