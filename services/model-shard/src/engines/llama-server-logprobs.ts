/**
 * Logprobs on the llama-server runtime: asked for with `n_probs` and read
 * from each streamed event's `completion_probabilities` into the mesh's
 * entries. Which distribution, as on the in-process runtime (docs/api.md):
 * at temperature 0 the full softmax (llama-server's plain `logprob`), above
 * it the one the token was sampled from (`post_sampling_probs`: after
 * top-k/top-p/min-p/temperature). Each entry's text is what its bytes add
 * to the text (a character split across tokens goes on the token that
 * completes it), so the entries of an event spell its `content`.
 *
 * One gap: llama-server holds back the tokens that end inside a UTF-8
 * character and then streams only the completing token's probabilities, so
 * such a character has one entry (carrying all of it) where it took several
 * tokens; entries can then be fewer than completion tokens.
 */
import type { SamplingParams } from "../../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { EngineLogprob, EngineTopLogprob } from "../engine.js";
import { logprobOf } from "./llama-logprobs.js";

/** One entry of llama-server's `completion_probabilities` (either shape). */
export interface ServerProbability {
  id?: number;
  token?: string;
  bytes?: number[];
  logprob?: number;
  prob?: number;
  top_logprobs?: ServerProbability[];
  top_probs?: ServerProbability[];
}

/** The /completion fields that ask for logprobs (none when not asked). */
export function logprobsRequest(s: Pick<SamplingParams, "logprobs" | "topLogprobs" | "temperature">): Record<string, unknown> {
  if (!s.logprobs) return {};
  return { n_probs: Math.max(1, s.topLogprobs), post_sampling_probs: s.temperature > 0 };
}

const utf8 = new TextEncoder();

/** Turns each event's probabilities into entries that spell the event's text. */
export class ServerLogprobs {
  readonly #decoder = new TextDecoder();

  constructor(private readonly topLogprobs: number) {}

  push(probabilities: readonly ServerProbability[] | undefined, content: string): EngineLogprob[] {
    const entries = (probabilities ?? []).map((p): EngineLogprob => {
      const bytes = bytesOf(p);
      const alternatives = (p.top_probs ?? p.top_logprobs ?? []).slice(0, this.topLogprobs).map(alternative);
      return { token: this.#decoder.decode(bytes, { stream: true }), logprob: logprobValue(p), bytes, topLogprobs: alternatives };
    });
    // Bytes that are not UTF-8 are shown as llama-server chose to (U+FFFD): the event's text then goes on its last entry.
    if (entries.length > 0 && entries.map((e) => e.token).join("") !== content) {
      for (const entry of entries) entry.token = "";
      entries[entries.length - 1].token = content;
    }
    return entries;
  }
}

function alternative(p: ServerProbability): EngineTopLogprob {
  const bytes = bytesOf(p);
  return { token: new TextDecoder().decode(bytes), logprob: logprobValue(p), bytes };
}

function logprobValue(p: ServerProbability): number {
  if (typeof p.prob === "number") return logprobOf(p.prob);
  return typeof p.logprob === "number" && Number.isFinite(p.logprob) ? logprobOf(Math.exp(p.logprob)) : logprobOf(0);
}

function bytesOf(p: ServerProbability): Uint8Array {
  const valid = Array.isArray(p.bytes) && p.bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);
  return valid ? Uint8Array.from(p.bytes!) : utf8.encode(p.token ?? "");
}
