/**
 * Logprobs of an OpenAI-compatible upstream, passed through: asked for in
 * the upstream's own request shape (chat `logprobs`/`top_logprobs`, legacy
 * completions `logprobs: N`) and read from either answer shape into the
 * mesh's entries. The numbers are the upstream's (vLLM, for one, reports
 * the raw model distribution by default); the mesh does not recompute them.
 */
import type { SamplingParams } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import { MIN_LOGPROB } from "../engine.js";
import type { EngineLogprob, EngineTopLogprob } from "../engine.js";

/** A chat chunk's `logprobs` or a text completion chunk's, whichever the upstream sent. */
export interface UpstreamLogprobs {
  /** Chat: one entry per token. */
  content?: unknown;
  /** Legacy completions: parallel arrays. */
  tokens?: unknown;
  token_logprobs?: unknown;
  top_logprobs?: unknown;
  /** Legacy completions: not used (the edge counts offsets in what it sends). */
  text_offset?: unknown;
}

const utf8 = new TextEncoder();

/** The request fields that ask the upstream for logprobs (none when not asked). */
export function logprobsBody(sampling: Pick<SamplingParams, "logprobs" | "topLogprobs">, chat: boolean): Record<string, unknown> {
  if (!sampling.logprobs) return {};
  if (!chat) return { logprobs: sampling.topLogprobs };
  return sampling.topLogprobs > 0 ? { logprobs: true, top_logprobs: sampling.topLogprobs } : { logprobs: true };
}

/** The entries of one upstream chunk; [] when it sent none or a shape the mesh does not know. */
export function upstreamLogprobs(logprobs: UpstreamLogprobs | null | undefined): EngineLogprob[] {
  if (!logprobs || typeof logprobs !== "object") return [];
  if (Array.isArray(logprobs.content)) {
    return logprobs.content.flatMap((item: unknown) => {
      if (!item || typeof item !== "object") return [];
      const entry = item as { token?: unknown; logprob?: unknown; bytes?: unknown; top_logprobs?: unknown };
      const tops: unknown[] = Array.isArray(entry.top_logprobs) ? entry.top_logprobs : [];
      const top = tops.flatMap((t) => (t && typeof t === "object" ? [alternative(t as typeof entry)] : []));
      return [{ ...alternative(entry), topLogprobs: top }];
    });
  }
  if (Array.isArray(logprobs.tokens)) {
    const values = Array.isArray(logprobs.token_logprobs) ? logprobs.token_logprobs : [];
    const tops = Array.isArray(logprobs.top_logprobs) ? logprobs.top_logprobs : [];
    return logprobs.tokens.map((token: unknown, i) => {
      const top = tops[i] && typeof tops[i] === "object" ? Object.entries(tops[i] as Record<string, unknown>) : [];
      const topLogprobs = top.map(([t, lp]) => alternative({ token: t, logprob: lp })).sort((a, b) => b.logprob - a.logprob);
      return { ...alternative({ token, logprob: values[i] }), topLogprobs };
    });
  }
  return [];
}

function alternative(entry: { token?: unknown; logprob?: unknown; bytes?: unknown }): EngineTopLogprob {
  const token = typeof entry.token === "string" ? entry.token : "";
  const logprob = typeof entry.logprob === "number" && Number.isFinite(entry.logprob) ? Math.max(entry.logprob, MIN_LOGPROB) : MIN_LOGPROB;
  const byteList = Array.isArray(entry.bytes) && entry.bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);
  const bytes = byteList ? Uint8Array.from(entry.bytes as number[]) : utf8.encode(token);
  return { token, logprob, bytes };
}
