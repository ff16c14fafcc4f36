/**
 * Token-length shaping: input and output lengths drawn around their means
 * (vLLM's "random" dataset: uniform within ±range ratio), and prompts built
 * to an exact token count with the target model's tokenizer.
 */
import { uniformInt } from "./random.js";
import type { Rng } from "./random.js";

/** Counts tokens the way the target model does. */
export interface BenchTokenizer {
  /** What it is, for the report ("gguf:model.gguf", "approx:words"). */
  name: string;
  /** False when counts are an estimate (no model tokenizer given). */
  exact: boolean;
  count(text: string): number;
}

/** n integer lengths uniform in [round(mean·(1−r)), round(mean·(1+r))], at least 1. */
export function drawLengths(n: number, meanLen: number, rangeRatio: number, rng: Rng): number[] {
  if (rangeRatio < 0 || rangeRatio >= 1) throw new RangeError(`range ratio must be within [0, 1), got ${rangeRatio}`);
  const lo = Math.max(1, Math.round(meanLen * (1 - rangeRatio)));
  const hi = Math.max(lo, Math.round(meanLen * (1 + rangeRatio)));
  return Array.from({ length: n }, () => uniformInt(rng, lo, hi));
}

const WORDS = (
  "the of and to in is was for on that with as by at from his her they this be are had not have but one all were when we there " +
  "can an which their said if do will each about how up out them then she many some so these would other into has more two time " +
  "like see him long make thing look write go day could people my than first water been call who oil its now find down did get come " +
  "made may part over new sound take only little work know place year live me back give most very after our just name good sentence"
).split(" ");

/** Fillers tried, in order, to reach the exact count after the word search. */
const FILLERS = [" a", " I", ".", ",", " x", "!", " 1", "a", "1"];

/** Counts words: the estimate used when no model tokenizer is given. */
export const approximateTokenizer: BenchTokenizer = {
  name: "approx:words",
  exact: false,
  count: (text) => (text.trim() === "" ? 0 : text.trim().split(/\s+/).length),
};

/** A prompt and its token count under the tokenizer (equal to the target unless it could not be hit). */
export interface ShapedPrompt {
  text: string;
  tokens: number;
}

/**
 * Builds a prompt of random common words with exactly `target` tokens under
 * the tokenizer: the longest word prefix that does not exceed the target
 * (binary search), then single-token fillers to close the gap.
 */
export function shapePrompt(tokenizer: BenchTokenizer, target: number, rng: Rng): ShapedPrompt {
  const words: string[] = [];
  const more = (k: number) => {
    while (words.length < k) words.push(WORDS[Math.floor(rng() * WORDS.length)]);
  };
  const countOf = (k: number) => tokenizer.count(words.slice(0, k).join(" "));
  let hi = Math.max(1, target);
  more(hi);
  while (countOf(hi) < target) {
    hi *= 2;
    more(hi);
  }
  let lo = 0;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (countOf(mid) <= target) lo = mid;
    else hi = mid - 1;
  }
  let text = words.slice(0, lo).join(" ");
  let tokens = tokenizer.count(text);
  for (let guard = 0; tokens < target && guard < target + 16; guard++) {
    let next: ShapedPrompt | undefined;
    for (const filler of FILLERS) {
      const candidate = text + filler;
      const c = tokenizer.count(candidate);
      if (c === tokens + 1) {
        next = { text: candidate, tokens: c };
        break;
      }
      if (c > tokens && c <= target && !next) next = { text: candidate, tokens: c };
    }
    if (!next) break;
    ({ text, tokens } = next);
  }
  return { text, tokens };
}
