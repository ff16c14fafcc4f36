import { TokenBias } from "node-llama-cpp";
import type { LlamaModel, Token } from "node-llama-cpp";

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

/** What the guard knows of a model's vocabulary. */
export interface Utf8Vocabulary {
  /** Single-byte tokens that are not text on their own (byte fallback), with their byte. */
  readonly bytes: ReadonlyMap<Token, number>;
  /** Tokens whose bytes are neither complete UTF-8 nor a known single byte: never sampled under the guard. */
  readonly unknown: readonly Token[];
}

/** Where the output stands in a UTF-8 sequence: continuation bytes still due and the range the next one must fall in. */
interface Pending {
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

/** Characters whose encodings, tokenized, reveal the byte tokens: every lead byte C2–F4 and every continuation byte. */
function* probeCharacters(): Generator<string> {
  for (let lead = 0xc2; lead <= 0xdf; lead++) for (let c = 0x80; c <= 0xbf; c++) yield Buffer.from([lead, c]).toString("utf8");
  for (let lead = 0xe0; lead <= 0xef; lead++) for (let c = 0; c < 4; c++) yield Buffer.from([lead, lead === 0xe0 ? 0xa0 + c : 0x80 + c, 0x80 + c]).toString("utf8");
  for (let lead = 0xf0; lead <= 0xf4; lead++) for (let c = 0; c < 4; c++) yield Buffer.from([lead, lead === 0xf0 ? 0x90 + c : 0x80 + c, 0x80 + c, 0x80 + c]).toString("utf8");
}

/**
 * Classifies a model's tokens once: a token whose text on its own is
 * complete UTF-8 is text; a single byte token is found by tokenizing
 * characters the vocabulary spells in bytes (the last n tokens of an
 * n-byte character, each not text alone, that detokenize to it); anything
 * else (a byte never found, such as C0 or F5, or a multi-byte token that
 * splits a character) is unknown.
 */
export function utf8Vocabulary(model: Pick<LlamaModel, "tokenize" | "detokenize">, vocabularySize: number): Utf8Vocabulary {
  const partial = new Set<Token>();
  for (let t = 0; t < vocabularySize; t++) {
    const token = t as Token;
    if (model.detokenize([token]).includes("\uFFFD")) partial.add(token);
  }
  const bytes = new Map<Token, number>();
  for (const character of probeCharacters()) {
    const encoded = Buffer.from(character, "utf8");
    const ids = model.tokenize(character, false, "trimLeadingSpace").slice(-encoded.length);
    if (ids.length !== encoded.length || !ids.every((id) => partial.has(id)) || model.detokenize(ids) !== character) continue;
    ids.forEach((id, i) => bytes.set(id, encoded[i]!));
  }
  return { bytes, unknown: [...partial].filter((t) => !bytes.has(t)) };
}

/**
 * One generation's guard: `push` each sampled token, and pass `bias` as
 * node-llama-cpp's `tokenBias` (called before each sample). The grammar
 * still does its part: across tokens llama.cpp does check that a pending
 * character continues with continuation bytes, so text tokens need no ban.
 */
export class Utf8Guard {
  #state: Pending = NONE;

  constructor(
    private readonly vocabulary: Utf8Vocabulary,
    private readonly biasFor: (state: Pending) => TokenBias,
  ) {}

  /** The tokens banned for the next sample. */
  readonly bias = (): TokenBias => this.biasFor(this.#state);

  push(token: Token): void {
    const byte = this.vocabulary.bytes.get(token);
    if (byte === undefined) {
      this.#state = NONE; // text (complete UTF-8), or a token the grammar forced
      return;
    }
    this.#state = nextPending(this.#state, byte) ?? NONE;
  }
}

/** Tokens in the model's vocabulary (its GGUF's `tokenizer.ggml.tokens`). */
export function vocabularySize(model: Pick<LlamaModel, "fileInfo">): number {
  const tokenizer = model.fileInfo.metadata.tokenizer as { ggml?: { tokens?: readonly unknown[] } } | undefined;
  return tokenizer?.ggml?.tokens?.length ?? 0;
}

/** The byte tokens banned in `state` (unknown tokens are banned in every state). */
export function bannedBytes(vocabulary: Utf8Vocabulary, state: Pending): Token[] {
  return [...vocabulary.bytes].filter(([, byte]) => nextPending(state, byte) === undefined).map(([token]) => token);
}

/**
 * Guards for one model: its vocabulary classified once (lazily, at the
 * first grammar request), one TokenBias per state, kept.
 */
export class Utf8Guards {
  #vocabulary: Utf8Vocabulary | undefined;
  readonly #biases = new Map<string, TokenBias>();

  constructor(private readonly model: LlamaModel) {}

  create(): Utf8Guard {
    this.#vocabulary ??= utf8Vocabulary(this.model, vocabularySize(this.model));
    const vocabulary = this.#vocabulary;
    return new Utf8Guard(vocabulary, (state) => {
      const key = `${state.remain}:${state.lo}:${state.hi}`;
      let bias = this.#biases.get(key);
      if (!bias) {
        bias = new TokenBias(this.model.tokenizer);
        const banned = [...vocabulary.unknown, ...bannedBytes(vocabulary, state)];
        if (banned.length > 0) bias.set(banned, "never");
        this.#biases.set(key, bias);
      }
      return bias;
    });
  }
}
