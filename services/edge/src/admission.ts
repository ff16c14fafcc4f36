import type { Client, ConnectError } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import type { AuthService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import { RATE_STATUS_METADATA } from "../../../lib/rate-limit-status.js";
import type { RateStatus } from "../../../lib/rate-limit-status.js";
import { asConnectError, errorDetails, RETRY_AFTER_HEADER, retryAfterSeconds } from "../../../lib/errors.js";
import { HttpError } from "./openai/errors.js";
import type { GenerationGate, GenerationInput, RequestContext } from "./openai/generation.js";

/** Longest an admission waits for auth: long enough to ride out a restart of auth (see AUTHENTICATE_TIMEOUT_MS). */
const ADMIT_TIMEOUT_MS = 20_000;
/** Rough characters per token for the prompt part of a reservation; RecordUsage corrects it. */
const CHARS_PER_TOKEN = 4;
/** Template tokens per message (role markers) in the estimate. */
const TOKENS_PER_MESSAGE = 4;

/** An estimate of the prompt's tokens: characters / 4 plus a few per message. */
export function estimatePromptTokens(input: Pick<GenerationInput, "messages" | "prompt">): number {
  let chars = input.prompt.length;
  for (const m of input.messages) chars += m.content.length;
  return Math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * input.messages.length;
}

/** What to reserve at admission: the prompt estimate plus max_tokens (0 when unbounded). */
export function reservationOf(input: GenerationInput): number {
  return estimatePromptTokens(input) + (input.sampling.maxTokens ?? 0);
}

/** OpenAI's duration format in x-ratelimit-reset-*: "120ms", "1s", "6m0s", "1.5s". */
export function formatReset(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Number(((ms - minutes * 60_000) / 1_000).toFixed(3));
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

/** OpenAI's x-ratelimit-* headers for the limits a key has (none for unlimited dimensions). */
export function rateLimitHeaders(status: RateStatus): Record<string, string> {
  const headers: Record<string, string> = {};
  if (status.limitRequests > 0) {
    headers["x-ratelimit-limit-requests"] = String(status.limitRequests);
    headers["x-ratelimit-remaining-requests"] = String(status.remainingRequests);
    headers["x-ratelimit-reset-requests"] = formatReset(status.resetRequestsMs);
  }
  if (status.limitTokens > 0) {
    headers["x-ratelimit-limit-tokens"] = String(status.limitTokens);
    headers["x-ratelimit-remaining-tokens"] = String(status.remainingTokens);
    headers["x-ratelimit-reset-tokens"] = formatReset(status.resetTokensMs);
  }
  return headers;
}

/** Whether the caller's key has a requests or tokens limit (else admission costs nothing). */
function limited(ctx: RequestContext): boolean {
  const limits = ctx.principal.limits;
  return Boolean(limits && (limits.requestsPerMinute > 0 || limits.tokensPerMinute > 0));
}

/**
 * Rate-limit admission (one counter per key in auth, so limits hold across
 * edges). Chat, completions and Responses are admitted by the router: it
 * tokenizes the prompt anyway, so it reserves the exact prompt tokens plus
 * max_tokens (or the model's default: the rest of the context) in the same
 * place in the path, before any shard is busy (`GenerateRequest.admit`);
 * this gate only marks the request, reads the status from `Started` and
 * turns the router's refusal into OpenAI's 429. Embeddings, which the
 * router does not tokenize, are admitted here on an estimate (characters /
 * 4). Reservations are corrected to real usage when it is recorded. Keys
 * without limits cost no call.
 */
export class Admission implements GenerationGate {
  constructor(private readonly auth: Client<typeof AuthService>) {}

  routerAdmits(ctx: RequestContext): boolean {
    return limited(ctx);
  }

  admitted(status: RateStatus, ctx: RequestContext): void {
    Object.assign(ctx.headers, rateLimitHeaders(status));
  }

  refusal(err: unknown, ctx: RequestContext): Error | undefined {
    const error = asConnectError(err);
    if (error.code !== Code.ResourceExhausted || errorDetails(error).reason !== "rate_limit_exceeded") return undefined;
    return this.#tooMany(error, ctx);
  }

  /** Admits the request on the estimate or throws OpenAI's 429; on success adds the x-ratelimit-* headers to `ctx.headers`. */
  async admit(input: GenerationInput, ctx: RequestContext): Promise<void> {
    if (!limited(ctx)) return;
    try {
      const { status } = await this.auth.admit(
        { keyId: ctx.principal.keyId, requestId: ctx.requestId, reserveTokens: reservationOf(input) },
        { signal: ctx.signal, timeoutMs: ADMIT_TIMEOUT_MS },
      );
      if (status) Object.assign(ctx.headers, rateLimitHeaders(status));
    } catch (err) {
      const error = asConnectError(err);
      if (error.code !== Code.ResourceExhausted) throw error;
      throw this.#tooMany(error, ctx);
    }
  }

  /** OpenAI's 429 for auth's refusal, with its x-ratelimit-* headers and retry-after. */
  #tooMany(error: ConnectError, ctx: RequestContext): HttpError {
    const status = Object.fromEntries(
      Object.entries(RATE_STATUS_METADATA).map(([field, key]) => [field, Number(error.metadata.get(key) ?? 0)]),
    ) as unknown as RateStatus;
    const kind = errorDetails(error).param === "tokens" ? "tokens" : "requests";
    const resetMs = kind === "tokens" ? status.resetTokensMs : status.resetRequestsMs;
    const headers = { ...ctx.headers, ...rateLimitHeaders(status), [RETRY_AFTER_HEADER]: retryAfterSeconds(resetMs) };
    return new HttpError(429, `${error.rawMessage} Please try again in ${formatReset(resetMs)}.`, kind, null, "rate_limit_exceeded", headers);
  }
}
