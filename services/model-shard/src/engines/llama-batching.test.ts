import { describe, expect, it } from "vitest";
import { DecodeStepper, fairShare } from "./llama-batching.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("DecodeStepper", () => {
  it("releases a step only when every member has arrived, all together", async () => {
    const stepper = new DecodeStepper(10_000);
    for (let i = 0; i < 3; i++) stepper.join();
    const released: number[] = [];
    const a = stepper.arrive().then(() => released.push(0));
    const b = stepper.arrive().then(() => released.push(1));
    await tick();
    await tick();
    expect(released).toEqual([]);
    const c = stepper.arrive().then(() => released.push(2));
    await Promise.all([a, b, c]);
    expect(released.sort()).toEqual([0, 1, 2]);
    expect(stepper.stats).toEqual({ steps: 1, sequences: 3 });
  });

  it("does not wait for a member that left", async () => {
    const stepper = new DecodeStepper(10_000);
    stepper.join();
    stepper.join();
    const a = stepper.arrive();
    stepper.leave();
    await a;
    expect(stepper.members).toBe(1);
  });

  it("releases whoever arrived once the bound passes", async () => {
    const stepper = new DecodeStepper(5);
    stepper.join();
    stepper.join();
    await stepper.arrive(); // the other member never arrives
    expect(stepper.stats).toEqual({ steps: 1, sequences: 1 });
  });
});

describe("fairShare", () => {
  it("gives every item an equal share and the rest in order", () => {
    const items = [{ tokens: [1, 2, 3, 4, 5, 6] }, { tokens: [7] }, { tokens: [8, 9] }].map((i) => ({ ...i, logits: [], evaluationPriority: 5 })) as never[];
    expect(fairShare(items, 6).map((p) => p.processAmount)).toEqual([3, 1, 2]);
    expect(fairShare(items, 3).map((p) => p.processAmount)).toEqual([1, 1, 1]);
  });
});
