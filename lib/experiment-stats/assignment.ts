/**
 * Sticky, deterministic arm assignment for router A/B experiments.
 *
 * A unit (user, API key, conversation, ...) is mapped to an arm by weighted
 * rendezvous hashing (a.k.a. weighted highest-random-weight hashing): for every
 * arm we hash `(salt, unitId, backend)` to a uniform `u ∈ (0, 1)` and compute the
 * score `-ln(u) / weight`, an exponential variate with rate `weight`; the arm with
 * the smallest score wins. Consequences:
 *
 * - the arm of a unit depends only on the salt, the unit id and the arm list, so it
 *   is identical across processes, replicas and restarts;
 * - `P(arm i) = weight_i / Σ weight` exactly (minimum of independent exponentials);
 * - raising one arm's weight only lowers that arm's scores, so units can only move
 *   *to* the arm that gained weight, and only the minimal fraction moves
 *   (50/50 → 60/40 moves ~10 % of units); arms are keyed by backend name, so
 *   reordering the arm list moves nobody.
 *
 * No I/O: hashing uses node:crypto sha256, which is pure computation.
 */
import { createHash } from "node:crypto";

/** One arm of an experiment: a backend name and its relative traffic weight. */
export interface ArmConfig {
  /** Backend identifier, unique within the experiment (e.g. `"trtllm"`, `"vllm"`). */
  backend: string;
  /** Relative weight, finite and ≥ 0. Weights need not sum to 1 or 100. */
  weight: number;
}

/** The part of an experiment definition needed to assign arms. */
export interface ExperimentConfig {
  /** Experiment name; also the default hash salt. */
  name: string;
  /** Optional salt. Changing it reshuffles every unit (use to start a fresh experiment). */
  salt?: string;
  /** Arms in display order; the first arm is the control in reports. */
  arms: readonly ArmConfig[];
}

/** Result of {@link assignArm}. */
export interface ArmAssignment {
  /** Backend name of the chosen arm. */
  arm: string;
  /** Index of the chosen arm in `experiment.arms`. */
  index: number;
}

const TWO_POW_53 = 2 ** 53;

/**
 * Hash the given parts to a uniform double in the open interval (0, 1).
 * Parts are joined with a NUL separator so that `("a", "bc")` ≠ `("ab", "c")`.
 *
 * @param parts strings to hash (order matters)
 * @returns a deterministic value in (0, 1), never exactly 0 or 1
 */
export function hashToUnit(...parts: readonly string[]): number {
  const digest = createHash("sha256").update(parts.join("\u0000")).digest();
  // Top 53 bits of the digest → integer in [0, 2^53); +0.5 keeps it off 0 and 1.
  const hi = digest.readUInt32BE(0);
  const lo = digest.readUInt32BE(4) >>> 11; // 21 bits
  return (hi * 2 ** 21 + lo + 0.5) / TWO_POW_53;
}

/**
 * Validate an experiment's arms; throws a descriptive `Error` on a configuration
 * that cannot be assigned (no arms, duplicate backends, negative / non-finite
 * weights, or all weights zero).
 *
 * @param experiment the experiment to check
 */
export function validateExperiment(experiment: ExperimentConfig): void {
  const { arms, name } = experiment;
  if (arms.length === 0) throw new Error(`experiment "${name}" has no arms`);
  const seen = new Set<string>();
  let total = 0;
  for (const arm of arms) {
    if (seen.has(arm.backend)) {
      throw new Error(`experiment "${name}" lists backend "${arm.backend}" twice`);
    }
    seen.add(arm.backend);
    if (!Number.isFinite(arm.weight) || arm.weight < 0) {
      throw new Error(`experiment "${name}" arm "${arm.backend}" has invalid weight ${arm.weight}`);
    }
    total += arm.weight;
  }
  if (total <= 0) throw new Error(`experiment "${name}" has no arm with positive weight`);
}

/**
 * Assign a unit to an arm, stickily and deterministically (weighted rendezvous hashing).
 * Arms with weight 0 never receive traffic.
 *
 * @param experiment experiment name, optional salt and weighted arms
 * @param unitId the randomisation unit (user id, API key, session id, ...)
 * @returns the chosen backend and its index in `experiment.arms`
 * @throws Error if the experiment configuration is invalid (see {@link validateExperiment})
 */
export function assignArm(experiment: ExperimentConfig, unitId: string): ArmAssignment {
  validateExperiment(experiment);
  const salt = experiment.salt ?? experiment.name;
  let bestIndex = -1;
  let bestScore = Number.POSITIVE_INFINITY;
  experiment.arms.forEach((arm, index) => {
    if (arm.weight <= 0) return;
    const u = hashToUnit("arm", salt, unitId, arm.backend);
    const score = -Math.log(u) / arm.weight;
    if (score < bestScore) {
      bestScore = score;
      bestIndex = index;
    }
  });
  const chosen = experiment.arms[bestIndex];
  // validateExperiment guarantees at least one positive weight.
  if (chosen === undefined) throw new Error(`experiment "${experiment.name}": no arm chosen`);
  return { arm: chosen.backend, index: bestIndex };
}

/**
 * Decide whether a request (or unit) should also be mirrored to a shadow backend.
 * Deterministic per `(name, id)`, and monotone in `percent`: raising the percentage
 * only adds ids, it never drops one that was already shadowed.
 *
 * @param name shadow/experiment name (acts as the salt)
 * @param unitOrRequestId id to hash; use the unit id for sticky shadowing, the request id otherwise
 * @param percent share of ids to shadow, 0–100 (clamped; NaN counts as 0)
 * @returns true if this id falls inside the shadowed share
 */
export function shouldShadow(name: string, unitOrRequestId: string, percent: number): boolean {
  if (!(percent > 0)) return false;
  if (percent >= 100) return true;
  return hashToUnit("shadow", name, unitOrRequestId) * 100 < percent;
}
