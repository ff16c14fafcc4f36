import type { RateLimitStatus } from "../src/gen/mesh/auth/v1/auth_pb.js";

/** What OpenAI's x-ratelimit-* headers say, after (or instead of) an admission: auth.proto's RateLimitStatus as plain data. */
export type RateStatus = Omit<RateLimitStatus, "$typeName" | "$unknown">;

/** The metadata keys that carry a refused admission's rate-limit status from auth to the edge. */
export const RATE_STATUS_METADATA = {
  limitRequests: "x-ratelimit-limit-requests",
  remainingRequests: "x-ratelimit-remaining-requests",
  resetRequestsMs: "x-ratelimit-reset-requests-ms",
  limitTokens: "x-ratelimit-limit-tokens",
  remainingTokens: "x-ratelimit-remaining-tokens",
  resetTokensMs: "x-ratelimit-reset-tokens-ms",
} as const satisfies Record<keyof RateStatus, string>;
