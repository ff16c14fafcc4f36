import { describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { Code } from "../../../lib/errors.js";
import { catalogOf } from "../../../tools/fake-shard/fake-shard.js";
import { ExperimentRegistry } from "./experiment-registry.js";

const models = catalogOf({ a: ["x:1"], b: ["x:2"], c: ["x:3"] }).models;
const experiment = (weights: [number, number], extra: object = {}) => ({
  name: "exp",
  model: "m",
  unit: "user" as const,
  arms: [
    { backend: "a", weight: weights[0] },
    { backend: "b", weight: weights[1] },
  ],
  ...extra,
});
const units = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

function assignAll(registry: ExperimentRegistry): string[] {
  return units.map((u) => registry.assign("m", { requestId: "", unitId: u, keyId: "k" })!.arm);
}

function codeOf(fn: () => unknown): Code | undefined {
  try {
    fn();
  } catch (err) {
    return ConnectError.from(err).code;
  }
  return undefined;
}

describe("experiment registry", () => {
  it("splits 10,000 units within tolerance of the weights", () => {
    const arms = assignAll(new ExperimentRegistry(models, [experiment([70, 30])]));
    const share = arms.filter((a) => a === "a").length / arms.length;
    expect(share).toBeGreaterThan(0.68);
    expect(share).toBeLessThan(0.72);
  });

  it("assigns the same arms in two independent registries (two routers)", () => {
    expect(assignAll(new ExperimentRegistry(models, [experiment([50, 50])]))).toEqual(assignAll(new ExperimentRegistry(models, [experiment([50, 50])])));
  });

  it("moves only the units it must when weights change at run time", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50])]);
    const before = assignAll(registry);
    registry.set([experiment([60, 40])], false);
    const after = assignAll(registry);
    const moved = units.map((_, i) => i).filter((i) => before[i] !== after[i]);
    // Only towards the arm that gained weight, and about the 10 % the weights require.
    expect(moved.every((i) => after[i] === "a")).toBe(true);
    expect(moved.length / units.length).toBeGreaterThan(0.08);
    expect(moved.length / units.length).toBeLessThan(0.12);
  });

  it("uses the key id as the unit for `unit: key`, else the user", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50], { unit: "key" })]);
    const arms = new Set(units.slice(0, 200).map((u) => registry.assign("m", { requestId: "", unitId: u, keyId: "same-key" })!.arm));
    expect(arms.size).toBe(1);
  });

  it("keeps measurements when only the shadow changes and starts fresh ones when the allocation changes", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50])]);
    const first = registry.get("exp").measurements;
    registry.set([experiment([50, 50], { shadow: { backend: "c", percent: 5 } })], false);
    expect(registry.get("exp").measurements).toBe(first);
    registry.set([experiment([40, 60])], false);
    expect(registry.get("exp").measurements).not.toBe(first);
  });

  it("refuses unsound experiments, all or none", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50])]);
    expect(codeOf(() => registry.set([{ ...experiment([1, 1]), name: "other", arms: [{ backend: "nope", weight: 1 }] }], false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => registry.set([experiment([0, 0])], false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => registry.set([{ ...experiment([1, 1]), name: "second" }], false))).toBe(Code.FailedPrecondition);
    expect(codeOf(() => registry.set([experiment([1, 1], { shadow: { backend: "a", percent: 5 } })], false))).toBe(Code.InvalidArgument);
    expect(registry.get("exp").config.arms[0].weight).toBe(50);
    // With replace, the running one is stopped and the new one may take the model.
    registry.set([{ ...experiment([1, 1]), name: "second" }], true);
    expect(registry.get("exp").state).toBe("stopped");
    expect(registry.running("m")?.config.name).toBe("second");
  });

  it("stops assigning once stopped", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50])]);
    registry.stop("exp");
    expect(registry.assign("m", { requestId: "r", unitId: "u", keyId: "k" })).toBeUndefined();
    expect(codeOf(() => registry.stop("missing"))).toBe(Code.NotFound);
  });

  it("records feedback once per request and metric, only from the key that made the request", () => {
    const registry = new ExperimentRegistry(models, [experiment([50, 50])], 2);
    const { arm } = registry.assign("m", { requestId: "r1", unitId: "u", keyId: "k1" })!;
    expect(codeOf(() => registry.recordFeedback({ requestId: "r1", metric: "thumbs_up", value: true, keyId: "k2", admin: false }))).toBe(Code.NotFound);
    expect(registry.recordFeedback({ requestId: "r1", metric: "thumbs_up", value: true, keyId: "k1", admin: false })).toEqual({ experiment: "exp", arm });
    expect(codeOf(() => registry.recordFeedback({ requestId: "r1", metric: "thumbs_up", value: false, keyId: "k1", admin: false }))).toBe(Code.AlreadyExists);
    expect(registry.recordFeedback({ requestId: "r1", metric: "score", value: 4, keyId: "other", admin: true }).arm).toBe(arm);
    expect(codeOf(() => registry.recordFeedback({ requestId: "r1", metric: "ttft_ms", value: 1, keyId: "k1", admin: false }))).toBe(Code.InvalidArgument);
    const stats = registry.get("exp").measurements.stats.arm(arm);
    expect(stats.proportions.get("thumbs_up")?.toJSON()).toEqual({ count: 1, successes: 1 });
    expect(stats.metrics.get("score")?.moments.mean).toBe(4);
    // The index is bounded: the oldest request is forgotten.
    registry.assign("m", { requestId: "r2", unitId: "u", keyId: "k1" });
    registry.assign("m", { requestId: "r3", unitId: "u", keyId: "k1" });
    expect(codeOf(() => registry.recordFeedback({ requestId: "r1", metric: "other", value: 1, keyId: "k1", admin: false }))).toBe(Code.NotFound);
  });
});
