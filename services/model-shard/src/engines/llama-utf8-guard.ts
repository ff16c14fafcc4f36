import { TokenBias } from "node-llama-cpp";
import type { LlamaModel, Token } from "node-llama-cpp";
import { TokenPieces } from "./llama-logprobs.js";

/**
 * Why grammar output needs this: llama.cpp's grammar matches code points
 * that it decodes from each token's bytes leniently (inside one token it
 * does not check continuation bytes, and it accepts overlong forms,
 * surrogates and lead bytes F5–FF). A model with byte tokens (the tiny
 * model's `<0x00>`…`<0xFF>`, byte-level BPE) can so produce bytes that are
 * not UTF-8, e.g. `<0xC0><0xAF>`: the grammar counts one character, the
 * client decodes two U+FFFD, and a `maxLength: 12` string arrives longer
 * than 12 with U+FFFD in it (R10 in docs/reliability.md). The guard bans,
 * before each sample, every token whose bytes cannot continue valid UTF-8
 * from where the output stands, so what the grammar counts is what the
 * client sees.
 */

/** Where the output stands in a UTF-8 sequence: continuation bytes still due and the range the next one must fall in. */
export interface Pending {
  remain: number;
  lo: number;
  hi: number;
}

const NONE: Pending = { remain: 0, lo: 0x80, hi: 0xbf };

/** The state after `byte`, or undefined when the byte cannot come here in valid UTF-8 (RFC 3629 §4). */
export function nextPending(state: Pending, byte: number): Pending | undefined {
  if (state.remain > 0) {
    if (byte < state.lo || byte > state.hi) return undefined;
    return state.remain === 1 ? NONE : { remain: state.remain - 1, lo: 0x80, hi: 0xbf };
  }
  if (byte < 0x80) return NONE;
  if (byte >= 0xc2 && byte <= 0xdf) return { remain: 1, lo: 0x80, hi: 0xbf };
  if (byte === 0xe0) return { remain: 2, lo: 0xa0, hi: 0xbf }; // no overlong 3-byte forms
  if (byte === 0xed) return { remain: 2, lo: 0x80, hi: 0x9f }; // no surrogates
  if (byte >= 0xe1 && byte <= 0xef) return { remain: 2, lo: 0x80, hi: 0xbf };
  if (byte === 0xf0) return { remain: 3, lo: 0x90, hi: 0xbf }; // no overlong 4-byte forms
  if (byte === 0xf4) return { remain: 3, lo: 0x80, hi: 0x8f }; // nothing above U+10FFFF
  if (byte >= 0xf1 && byte <= 0xf3) return { remain: 3, lo: 0x80, hi: 0xbf };
  return undefined; // 80–BF without a lead, C0, C1, F5–FF
}

/** Every state output can be in: none pending, then by continuation bytes due and the next one's range. */
const STATES: readonly Pending[] = [
  NONE,
  { remain: 1, lo: 0x80, hi: 0xbf },
  { remain: 2, lo: 0xa0, hi: 0xbf },
  { remain: 2, lo: 0x80, hi: 0x9f },
  { remain: 2, lo: 0x80, hi: 0xbf },
  { remain: 3, lo: 0x90, hi: 0xbf },
  { remain: 3, lo: 0x80, hi: 0x8f },
  { remain: 3, lo: 0x80, hi: 0xbf },
];
const stateIndex = (s: Pending): number => STATES.findIndex((t) => t.remain === s.remain && t.lo === s.lo && t.hi === s.hi);
/** In a transition table: the token cannot come in this state. */
const INVALID = 255;
const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * A model's vocabulary as a UTF-8 state machine: for each state and token,
 * the state after the token's raw bytes, or INVALID; and per state the
 * tokens to ban. Exempt from the bans (kept small: they are passed to the
 * sampler at every step) are tokens llama.cpp's grammar refuses by itself:
 * with a character pending, any token whose first byte is not a
 * continuation byte.
 */
export interface Utf8Vocabulary {
  /** `next[state * size + token]`: the state index after the token, or INVALID. */
  readonly next: Uint8Array;
  readonly size: number;
  /** Tokens banned in each state (by state index). */
  readonly banned: readonly (readonly Token[])[];
}

/**
 * Reads every token's raw bytes once (TokenPieces: the GGUF vocabulary's
 * `<0xNN>` byte tokens and GPT-2 byte-level pieces, so a token that splits
 * a character is seen as the bytes it is). A token whose bytes are valid
 * UTF-8 containing U+FFFD is banned everywhere: either the model's literal
 * U+FFFD or a piece whose bytes TokenPieces could not recover.
 */
export function utf8Vocabulary(bytesOf: (token: Token) => Uint8Array, size: number): Utf8Vocabulary {
  const next = new Uint8Array(STATES.length * size).fill(INVALID);
  const banned: Token[][] = STATES.map(() => []);
  for (let t = 0; t < size; t++) {
    const token = t as Token;
    const bytes = bytesOf(token);
    let ambiguous = false;
    try {
      ambiguous = strict.decode(bytes).includes("\uFFFD");
    } catch {
      // Not UTF-8 on its own (a byte token, a piece that splits a character): the state machine decides.
    }
    STATES.forEach((start, i) => {
      let state: Pending | undefined = start;
      for (const b of bytes) if (state) state = nextPending(state, b);
      if (state && !ambiguous) next[i * size + t] = stateIndex(state);
      else if (start.remain === 0 || ambiguous || (bytes[0] !== undefined && bytes[0] >= 0x80 && bytes[0] <= 0xbf)) banned[i].push(token);
    });
  }
  return { next, size, banned };
}

/**
 * One generation's guard: `push` each sampled token, and pass `bias` as
 * node-llama-cpp's `tokenBias` (called before each sample).
 */
export class Utf8Guard {
  #state = 0;

  constructor(
    private readonly vocabulary: Utf8Vocabulary,
    private readonly biasFor: (state: number) => TokenBias,
  ) {}

  /** The tokens banned for the next sample. */
  readonly bias = (): TokenBias => this.biasFor(this.#state);

  /** The state index now (0: no character pending). */
  get state(): number {
    return this.#state;
  }

  push(token: Token): void {
    const { next, size } = this.vocabulary;
    const after = token < size ? next[this.#state * size + token] : INVALID;
    this.#state = after === INVALID ? 0 : after; // INVALID only if the grammar forced a banned token
  }
}

/** Tokens in the model's vocabulary (its GGUF's `tokenizer.ggml.tokens`). */
export function vocabularySize(model: Pick<LlamaModel, "fileInfo">): number {
  const tokenizer = model.fileInfo.metadata.tokenizer as { ggml?: { tokens?: readonly unknown[] } } | undefined;
  return tokenizer?.ggml?.tokens?.length ?? 0;
}

/**
 * Guards for one model: its vocabulary read once (lazily, at the first
 * grammar request), one TokenBias per state, kept.
 */
export class Utf8Guards {
  #vocabulary: Utf8Vocabulary | undefined;
  readonly #biases = new Map<number, TokenBias>();

  constructor(private readonly model: LlamaModel) {}

  create(): Utf8Guard {
    if (!this.#vocabulary) {
      const pieces = new TokenPieces(this.model); // its byte cache is dropped with it
      this.#vocabulary = utf8Vocabulary((t) => pieces.bytes(t), vocabularySize(this.model));
    }
    const vocabulary = this.#vocabulary;
    return new Utf8Guard(vocabulary, (state) => {
      let bias = this.#biases.get(state);
      if (!bias) {
        bias = new TokenBias(this.model.tokenizer);
        const banned = vocabulary.banned[state];
        if (banned.length > 0) bias.set([...banned], "never");
        this.#biases.set(state, bias);
      }
      return bias;
    });
  }
}
