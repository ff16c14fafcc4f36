import type { TokenLogprob } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";

/** One `top_logprobs` item of a chat choice, as OpenAI shapes it. */
export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** One `logprobs.content[]` item of a chat choice. */
export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

/** A chat choice's `logprobs` (whole, or one chunk's part of it in a stream). */
export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

/** A text completion choice's `logprobs` (legacy shape): parallel arrays, offsets into the completion text. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** Entries as a chat choice's `logprobs`: `content` spells the message (or the chunk's delta). */
export function chatLogprobs(entries: readonly TokenLogprob[]): ChatLogprobs {
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: Array.from(e.bytes),
      top_logprobs: e.topLogprobs.map((t) => ({ token: t.token, logprob: t.logprob, bytes: Array.from(t.bytes) })),
    })),
    refusal: null,
  };
}

/**
 * Entries as a text completion choice's `logprobs`. `offset` is where the
 * first entry's text starts in the completion (a stream passes what it has
 * sent so far). Each `top_logprobs` dict holds the alternatives and, as
 * OpenAI's legacy API does, the sampled token too (so `logprobs: 0` gives
 * just the sampled token); tokens with the same text keep the likeliest.
 */
export function completionLogprobs(entries: readonly TokenLogprob[], offset = 0): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const e of entries) {
    out.tokens.push(e.token);
    out.token_logprobs.push(e.logprob);
    // No prototype: a token may be any string ("__proto__" too).
    const top = Object.create(null) as Record<string, number>;
    for (const t of e.topLogprobs) if (!Object.hasOwn(top, t.token)) top[t.token] = t.logprob;
    if (!Object.hasOwn(top, e.token)) top[e.token] = e.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += e.token.length;
  }
  return out;
}
