import { describe, expect, it } from "vitest";
import { capPrefill, DecodeStepper, fairShare } from "./llama-batching.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("DecodeStepper", () => {
  it("releases a step only when every member has arrived, all together", async () => {
    const stepper = new DecodeStepper(10_000);
    for (let i = 0; i < 3; i++) stepper.join();
    const released: number[] = [];
    const a = stepper.arrive()!.then(() => released.push(0));
    const b = stepper.arrive()!.then(() => released.push(1));
    await tick();
    await tick();
    expect(released).toEqual([]);
    const c = stepper.arrive()!.then(() => released.push(2));
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

describe("DecodeStepper at one running sequence", () => {
  it("lets a sequence decoding alone pass without waiting (no promise, no timer)", () => {
    const stepper = new DecodeStepper(10_000);
    stepper.join();
    expect(stepper.arrive()).toBeUndefined();
    expect(stepper.arrive()).toBeUndefined();
    expect(stepper.stats).toEqual({ steps: 2, sequences: 2 });
  });

  it("lets a new prompt go at once when no step is being gathered", () => {
    const stepper = new DecodeStepper(10_000);
    expect(stepper.enter()).toBeUndefined();
    stepper.join();
    expect(stepper.enter()).toBeUndefined();
  });

  it("puts a new prompt into the step being gathered, and never waits for a prompt", async () => {
    const stepper = new DecodeStepper(10_000);
    stepper.join();
    stepper.join();
    const order: string[] = [];
    const a = stepper.arrive()!.then(() => order.push("a"));
    const guest = stepper.enter()!.then(() => order.push("guest"));
    await tick();
    await tick();
    expect(order).toEqual([]); // the second member has not arrived
    const b = stepper.arrive()!.then(() => order.push("b"));
    await Promise.all([a, b, guest]);
    expect(order).toEqual(["a", "b", "guest"]);
    expect(stepper.stats).toEqual({ steps: 1, sequences: 2 });
  });
});

describe("capPrefill (chunked prefill)", () => {
  const item = (n: number) => ({ tokens: Array.from({ length: n }, (_, i) => i), logits: [], evaluationPriority: 5 }) as never;

  it("limits the prompt tokens of a batch and leaves decodes alone", () => {
    const shares = fairShare([item(1), item(700), item(1), item(300)], 512);
    const capped = capPrefill(shares, 128).map((p) => p.processAmount);
    expect(capped).toEqual([1, 128, 1, 1]);
    expect(capped.reduce((a, b) => a + b)).toBeLessThanOrEqual(128 + 3);
  });

  it("keeps a prompt that fits whole", () => {
    expect(capPrefill(fairShare([item(1), item(40)], 512), 128).map((p) => p.processAmount)).toEqual([1, 40]);
  });
});

describe("fairShare", () => {
  it("gives every item an equal share and the rest in order", () => {
    const items = [{ tokens: [1, 2, 3, 4, 5, 6] }, { tokens: [7] }, { tokens: [8, 9] }].map((i) => ({ ...i, logits: [], evaluationPriority: 5 })) as never[];
    expect(fairShare(items, 6).map((p) => p.processAmount)).toEqual([3, 1, 2]);
    expect(fairShare(items, 3).map((p) => p.processAmount)).toEqual([1, 1, 1]);
  });
});
