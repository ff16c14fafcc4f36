import { describe, expect, it } from "vitest";
import { RATE_WINDOW_MS, RateLimiter } from "./rate-limiter.js";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("RateLimiter", () => {
  it("admits exactly the requests per minute, then refuses until the oldest leaves the window", () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    const limits = { requestsPerMinute: 3, tokensPerMinute: 0 };
    const results = Array.from({ length: 5 }, (_, i) => limiter.admit("k", `r${i}`, 0, limits));
    expect(results.map((r) => r.admitted)).toEqual([true, true, true, false, false]);
    expect(results[3].exceeded).toBe("requests");
    expect(results[3].status).toMatchObject({ limitRequests: 3, remainingRequests: 0, resetRequestsMs: RATE_WINDOW_MS });
    c.t += RATE_WINDOW_MS - 1;
    expect(limiter.admit("k", "r5", 0, limits).admitted).toBe(false);
    c.t += 1;
    expect(limiter.admit("k", "r6", 0, limits).admitted).toBe(true);
  });

  it("reserves tokens at admission and corrects them to the real usage on settle", () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    const limits = { requestsPerMinute: 0, tokensPerMinute: 100 };
    expect(limiter.admit("k", "a", 80, limits).admitted).toBe(true);
    const refused = limiter.admit("k", "b", 30, limits);
    expect(refused).toMatchObject({ admitted: false, exceeded: "tokens" });
    expect(refused.status.remainingTokens).toBe(20);
    limiter.settle("a", 50);
    expect(limiter.admit("k", "b", 30, limits).admitted).toBe(true);
    expect(limiter.status("k", limits).remainingTokens).toBe(20);
  });

  it("keeps keys apart and does not count unlimited keys", () => {
    const limiter = new RateLimiter(clock().now);
    expect(limiter.admit("a", "1", 0, { requestsPerMinute: 1, tokensPerMinute: 0 }).admitted).toBe(true);
    expect(limiter.admit("b", "2", 0, { requestsPerMinute: 1, tokensPerMinute: 0 }).admitted).toBe(true);
    for (let i = 0; i < 100; i++) expect(limiter.admit("c", `u${i}`, 10, { requestsPerMinute: 0, tokensPerMinute: 0 }).admitted).toBe(true);
    expect(limiter.admit("a", "3", 0, { requestsPerMinute: 1, tokensPerMinute: 0 }).admitted).toBe(false);
  });

  it("says how long until a refused token request fits", () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    const limits = { requestsPerMinute: 0, tokensPerMinute: 100 };
    limiter.admit("k", "a", 60, limits);
    c.t += 10_000;
    limiter.admit("k", "b", 40, limits);
    c.t += 5_000;
    const refused = limiter.admit("k", "c", 50, limits);
    expect(refused.admitted).toBe(false);
    // Only when "a" (60 tokens) leaves the window do 50 more fit.
    expect(refused.status.resetTokensMs).toBe(RATE_WINDOW_MS - 15_000);
  });
});
