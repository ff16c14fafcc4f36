/**
 * Log probabilities from llama.cpp, as node-llama-cpp 3.22 reports them
 * (`LlamaContextSequence.evaluateWithMetadata(tokens, {confidence, probabilities})`).
 *
 * What the numbers are (node-llama-cpp's addon, llama/addon/AddonContext.cpp
 * `SampleToken`): when either is asked, the grammar (if any) is applied first,
 * then the whole sampler chain (logit bias, repetition penalties, and either
 * greedy at temperature 0 or top-k → top-p → min-p → temperature → dist);
 * the candidates left are softmaxed over their logits. So a logprob is the
 * token's probability under the distribution it was actually sampled from:
 * at temperature 0 the model's full softmax (after penalties and grammar);
 * above it, after temperature scaling and renormalized over the top-k/top-p/
 * min-p survivors. `confidence` is the sampled token's probability alone
 * (no vocabulary-sized array crosses into JavaScript); `probabilities` is
 * every candidate's, sorted, and is asked for only when top_logprobs > 0.
 */
import type { LlamaModel, Token } from "node-llama-cpp";
import { MAX_TOP_LOGPROBS, MIN_LOGPROB } from "../engine.js";
import type { EngineLogprob, EngineTopLogprob } from "../engine.js";

/** Natural log of a probability, with zero as MIN_LOGPROB. */
export function logprobOf(probability: number): number {
  return probability > 0 ? Math.max(Math.log(probability), MIN_LOGPROB) : MIN_LOGPROB;
}

/** One token as llama.cpp sampled it, with what evaluateWithMetadata reported. */
export interface SampledToken {
  token: Token;
  confidence?: number;
  probabilities?: Map<Token, number>;
}

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The raw bytes and text of vocabulary tokens. The bytes come from the GGUF
 * vocabulary (SentencePiece `<0xNN>` byte tokens and `▁` spaces, GPT-2
 * byte-level BPE), because node-llama-cpp's `detokenize` returns a string
 * and so loses the bytes of a token that ends inside a character. Models
 * with another tokenizer fall back to the UTF-8 of the token's text.
 */
export class TokenPieces {
  readonly #model: LlamaModel;
  readonly #vocab: readonly string[] | undefined;
  readonly #kind: string;
  readonly #bytes = new Map<Token, Uint8Array>();

  constructor(model: LlamaModel) {
    this.#model = model;
    const ggml = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown; model?: unknown } } }).tokenizer?.ggml;
    this.#vocab = Array.isArray(ggml?.tokens) ? (ggml.tokens as string[]) : undefined;
    this.#kind = typeof ggml?.model === "string" ? ggml.model : "";
  }

  /** The token's own bytes. */
  bytes(token: Token): Uint8Array {
    let bytes = this.#bytes.get(token);
    if (!bytes) {
      bytes = this.#rawBytes(token);
      this.#bytes.set(token, bytes);
    }
    return bytes;
  }

  /** The token as an alternative: its bytes and their text (a control token as its name). */
  alternative(token: Token, logprob: number): EngineTopLogprob {
    const bytes = this.bytes(token);
    return { token: decoder.decode(bytes), logprob, bytes };
  }

  #rawBytes(token: Token): Uint8Array {
    const attributes = this.#model.getTokenAttributes(token);
    if (attributes.control) return utf8.encode(this.#model.detokenize([token], true));
    const piece = this.#vocab?.[token];
    if (piece !== undefined) {
      if (this.#kind === "llama") {
        const byte = attributes.byte ? /^<0x([0-9A-Fa-f]{2})>$/.exec(piece) : null;
        return byte ? Uint8Array.of(Number.parseInt(byte[1], 16)) : utf8.encode(piece.replaceAll("\u2581", " "));
      }
      if (this.#kind === "gpt2") {
        const bytes = byteLevelBytes(piece);
        if (bytes) return bytes;
      }
    }
    return utf8.encode(this.#model.detokenize([token], false));
  }
}

/** GPT-2's byte-level alphabet, inverted: the character that stands for each byte → the byte. */
const BYTE_OF_CHAR: ReadonlyMap<number, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<number, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) map.set(printable(b) ? b : 256 + shifted++, b);
  return map;
})();

/** A GPT-2 byte-level BPE piece as its bytes; undefined if it has a character outside that alphabet. */
export function byteLevelBytes(piece: string): Uint8Array | undefined {
  const out: number[] = [];
  for (const char of piece) {
    const byte = BYTE_OF_CHAR.get(char.codePointAt(0)!);
    if (byte === undefined) return undefined;
    out.push(byte);
  }
  return Uint8Array.from(out);
}

interface HeldToken {
  logprob: number;
  bytes: Uint8Array;
  topLogprobs: EngineTopLogprob[];
}

/**
 * Turns sampled tokens into logprob entries that spell the text the
 * incremental detokenizer releases: a token's entry carries the text that
 * became complete with it, and the earlier tokens of a character split over
 * several tokens carry "" (their bytes are still their own, so the bytes of
 * a run decode to its text). Entries of a run wait until its text is out.
 */
export class LogprobBuilder {
  readonly #pieces: TokenPieces;
  readonly #top: number;
  #held: HeldToken[] = [];

  constructor(pieces: TokenPieces, top: number) {
    this.#pieces = pieces;
    this.#top = Math.min(Math.max(0, top), MAX_TOP_LOGPROBS);
  }

  /** Whether evaluateWithMetadata must report every candidate's probability (for alternatives), not only the sampled one's. */
  get wantsProbabilities(): boolean {
    return this.#top > 0;
  }

  /** A sampled token and the text the detokenizer released with it; `holding` when it still holds bytes of a character. */
  push(sampled: SampledToken, text: string, holding: boolean): EngineLogprob[] {
    this.#held.push(this.#entry(sampled));
    return holding ? [] : this.flush(text);
  }

  /** The held tokens, with the text that ends their run. */
  flush(text: string): EngineLogprob[] {
    const run = this.#held;
    this.#held = [];
    if (run.length === 0) return [];
    if (run.length === 1 && !text.includes("\uFFFD")) return [{ ...run[0], token: text, bytes: utf8.encode(text) }];
    const raw = Buffer.concat(run.map((t) => t.bytes));
    const own = raw.toString("utf8") === text;
    return run.map((t, i) => {
      const last = i === run.length - 1;
      const bytes = own ? t.bytes : last ? utf8.encode(text) : new Uint8Array(0);
      return { ...t, token: last ? text : "", bytes };
    });
  }

  #entry(sampled: SampledToken): HeldToken {
    const probability = sampled.probabilities?.get(sampled.token) ?? sampled.confidence ?? 0;
    const topLogprobs: EngineTopLogprob[] = [];
    if (this.#top > 0 && sampled.probabilities) {
      for (const [token, p] of sampled.probabilities) {
        if (topLogprobs.length >= this.#top) break;
        topLogprobs.push(this.#pieces.alternative(token, logprobOf(p)));
      }
    }
    return { logprob: logprobOf(probability), bytes: this.#pieces.bytes(sampled.token), topLogprobs };
  }
}
