import { describe, expect, it } from "vitest";
import { ExperimentStats } from "../../../lib/experiment-stats/index.js";
import { ExperimentMeasurements, SHARED_SAMPLE_SIZE, sharedSnapshot } from "./experiment-metrics.js";

describe("experiment measurements across routers", () => {
  it("shares exact moments and a thinned, deterministic percentile sample", () => {
    const stats = new ExperimentStats();
    for (let i = 0; i < 5_000; i++) stats.record("a", { metrics: { e2e_ms: i } });
    const shared = sharedSnapshot(stats);
    const metric = shared.arms[0].metrics.e2e_ms;
    expect(metric.reservoir.values).toHaveLength(SHARED_SAMPLE_SIZE);
    expect(metric.moments.count).toBe(5_000);
    expect(JSON.stringify(sharedSnapshot(stats))).toBe(JSON.stringify(shared));
  });

  it("reports the same merged statistics on two routers that hold each other's published part", () => {
    const published = new Map<string, ExperimentStats>();
    const make = (id: string) => {
      const m: ExperimentMeasurements = new ExperimentMeasurements(
        new Date(0),
        () => [...published].filter(([k]) => k !== id).map(([routerId, stats]) => ({ routerId, stats, shadow: new ExperimentStats() })),
        id,
      );
      return m;
    };
    const one = make("r1");
    const two = make("r2");
    const subject = {
      name: "x",
      arms: [
        { backend: "a", weight: 1 },
        { backend: "b", weight: 1 },
      ],
    };
    for (let i = 0; i < 3_000; i++) (i % 3 ? one : two).record(subject, i % 2 ? "a" : "b", { metrics: { e2e_ms: (i * 7) % 101 } });
    published.set("r1", ExperimentStats.fromJSON(sharedSnapshot(one.stats)));
    published.set("r2", ExperimentStats.fromJSON(sharedSnapshot(two.stats)));
    expect(one.clusterRequests).toBe(3_000);
    expect(JSON.stringify(one.merged().stats.toJSON())).toBe(JSON.stringify(two.merged().stats.toJSON()));
  });
});
