import { describe, expect, it } from "vitest";
import { RestartBackoff } from "./restart-backoff.js";

describe("RestartBackoff", () => {
  it("doubles from 0.5 s to a 30 s cap while starts fail, and starts over after a start that stayed up 30 s", () => {
    const backoff = new RestartBackoff();
    const delays: number[] = [];
    let now = 1_000_000;
    for (let i = 0; i < 8; i++) {
      backoff.started(now);
      now += 100; // exited at once
      delays.push(backoff.nextDelayMs(now));
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    backoff.started(now);
    expect(backoff.nextDelayMs(now + 31_000)).toBe(500);
  });
});
