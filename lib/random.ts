/** A uniform [0, 1) generator. */
export type Rng = () => number;

/** A seeded generator whose state can be saved and resumed. */
export interface SeededRandom {
  /** Next double in [0, 1). */
  (): number;
  /** Current internal 32-bit state (pass it as the seed to resume the stream). */
  readonly state: () => number;
}

/**
 * mulberry32: a small, fast, seedable 32-bit PRNG (not cryptographic). The
 * same seed gives the same sequence on every machine, so tiny models, load
 * generators and statistical simulations are reproducible.
 */
export function seededRandom(seed: number): SeededRandom {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, { state: () => s });
}
