/**
 * A tiny SentencePiece-style ("llama" tokenizer model) vocabulary for test
 * models: `<unk>`, `<s>`, `</s>`, the 256 byte-fallback tokens (so any UTF-8
 * text tokenizes) and a few dozen common English pieces.
 */

/** Token type ids used by `tokenizer.ggml.token_type`. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** The SentencePiece word-boundary marker (U+2581), used for a leading space. */
export const SPM_SPACE = "\u2581";

/** A vocabulary ready to be written as `tokenizer.ggml.*` metadata. */
export interface TinyVocab {
  /** Token strings, indexed by token id. */
  tokens: string[];
  /** SentencePiece scores (log-probability-like; higher merges first). */
  scores: number[];
  /** Token types (see {@link TokenType}). */
  tokenTypes: number[];
  /** `<unk>` id (0). */
  unkId: number;
  /** `<s>` id (1). */
  bosId: number;
  /** `</s>` id (2). */
  eosId: number;
}

/**
 * Common English words; each is added with a leading-space marker, together
 * with all its prefixes, so SentencePiece's pairwise merges can reach it.
 */
const WORDS = [
  "the",
  "a",
  "is",
  "of",
  "and",
  "to",
  "in",
  "you",
  "I",
  "it",
  "that",
  "for",
  "on",
  "with",
  "are",
  "be",
  "this",
  "was",
  "have",
  "not",
  "hello",
  "world",
  "what",
  "how",
  "can",
  "do",
  "we",
  "my",
  "your",
  "at",
  "as",
  "from",
  "or",
  "an",
  "will",
  "one",
  "all",
  "there",
  "so",
  "if",
  "Hello",
  "The",
] as const;

/** Word-internal pieces (no leading space). */
const SUFFIXES = ["ing", "ed", "er", "s", "ly", ".", ",", "!", "?", "'s"] as const;

/** Adds `piece` and every non-empty prefix of it (shortest first), once each. */
function addWithPrefixes(out: string[], seen: Set<string>, piece: string): void {
  const chars = Array.from(piece);
  for (let n = 1; n <= chars.length; n++) {
    const prefix = chars.slice(0, n).join("");
    if (!seen.has(prefix)) {
      seen.add(prefix);
      out.push(prefix);
    }
  }
}

/** The normal (type 1) pieces of the tiny vocabulary, in id order. */
export function tinyVocabPieces(): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const w of WORDS) addWithPrefixes(out, seen, SPM_SPACE + w);
  for (const s of SUFFIXES) addWithPrefixes(out, seen, s);
  return out;
}

/** Formats a byte as its SentencePiece byte-fallback token, e.g. `<0x0A>`. */
export function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/**
 * Builds the tiny vocabulary: ids 0–2 are `<unk>`, `<s>`, `</s>`; ids 3–258
 * the byte tokens `<0x00>`…`<0xFF>`; then the normal pieces. Deterministic.
 */
export function buildTinyVocab(): TinyVocab {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const scores: number[] = [0, 0, 0];
  const tokenTypes: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(byteToken(b));
    scores.push(0);
    tokenTypes.push(TokenType.BYTE);
  }
  tinyVocabPieces().forEach((piece, i) => {
    tokens.push(piece);
    // Longer pieces are "more frequent" here, so merges prefer them; ties by order.
    scores.push(-1 - i / 1000 + Array.from(piece).length / 100);
    tokenTypes.push(TokenType.NORMAL);
  });
  return { tokens, scores, tokenTypes, unkId: 0, bosId: 1, eosId: 2 };
}
