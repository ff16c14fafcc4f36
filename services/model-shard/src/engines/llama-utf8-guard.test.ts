import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getLlama, LlamaLogLevel, TokenBias } from "node-llama-cpp";
import type { LlamaModel, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../../lib/gguf/tiny-model.js";
import { TokenPieces } from "./llama-logprobs.js";
import { nextPending, Utf8Guard, Utf8Guards, utf8Vocabulary, vocabularySize } from "./llama-utf8-guard.js";
import type { Utf8Vocabulary } from "./llama-utf8-guard.js";

const NONE = { remain: 0, lo: 0x80, hi: 0xbf };

/** Walks `bytes` through the state machine: true when every byte may come where it does and the last character is complete. */
function valid(bytes: number[]): boolean {
  let state: typeof NONE | undefined = NONE;
  for (const b of bytes) {
    state = nextPending(state, b);
    if (!state) return false;
  }
  return state.remain === 0;
}

describe("nextPending (RFC 3629's well-formed byte sequences)", () => {
  it.each([
    ["ASCII", [0x41], true],
    ["é", [0xc3, 0xa9], true],
    ["€", [0xe2, 0x82, 0xac], true],
    ["😀", [0xf0, 0x9f, 0x98, 0x80], true],
    ["U+10FFFF", [0xf4, 0x8f, 0xbf, 0xbf], true],
    ["a lone continuation byte", [0x80], false],
    ["a lead without its continuation, then ASCII", [0xc3, 0x28], false],
    ["overlong 2-byte (C0 AF = '/')", [0xc0, 0xaf], false],
    ["overlong 2-byte (C1)", [0xc1, 0x81], false],
    ["overlong 3-byte (E0 80 AF)", [0xe0, 0x80, 0xaf], false],
    ["a surrogate (ED A0 80)", [0xed, 0xa0, 0x80], false],
    ["overlong 4-byte (F0 80 80 AF)", [0xf0, 0x80, 0x80, 0xaf], false],
    ["above U+10FFFF (F4 90 80 80)", [0xf4, 0x90, 0x80, 0x80], false],
    ["lead F5", [0xf5, 0x80, 0x80, 0x80], false],
    ["lead FF", [0xff], false],
  ])("%s → %s", (_name, bytes, expected) => {
    expect(valid(bytes)).toBe(expected);
  });
});

describe("the guard on the tiny model's vocabulary", () => {
  let model: LlamaModel;
  let vocabulary: Utf8Vocabulary;
  let pieces: TokenPieces;
  let dir: string;
  /** The tiny vocabulary's byte token `<0xNN>`. */
  const byteToken = (b: number): Token => {
    for (let t = 0 as Token; t < vocabulary.size; t++) {
      const bytes = pieces.bytes(t);
      if (bytes.length === 1 && bytes[0] === b && model.getTokenAttributes(t).byte) return t;
    }
    throw new Error(`no byte token ${b.toString(16)}`);
  };
  /** The state index after `bytes` from no character pending. */
  const stateAfter = (...bytes: number[]): number => {
    const guard = new Utf8Guard(vocabulary, () => new TokenBias(model.tokenizer));
    for (const b of bytes) guard.push(byteToken(b));
    return guard.state;
  };
  const bannedAfter = (...bytes: number[]) => new Set(vocabulary.banned[stateAfter(...bytes)]);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "utf8-guard-"));
    const modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false });
    model = await llama.loadModel({ modelPath });
    pieces = new TokenPieces(model);
    vocabulary = utf8Vocabulary((t) => pieces.bytes(t), vocabularySize(model));
  });
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bans, with nothing pending, the byte tokens no valid UTF-8 starts with, and nothing else", () => {
    const banned = bannedAfter();
    for (const b of [0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xf8, 0xff]) expect(banned.has(byteToken(b)), b.toString(16)).toBe(true);
    for (const b of [0x41, 0xc2, 0xc3, 0xe0, 0xed, 0xf0, 0xf4]) expect(banned.has(byteToken(b)), b.toString(16)).toBe(false);
    // 64 continuation bytes, C0, C1 and F5–FF: 77 byte tokens; every text piece is allowed.
    expect(banned.size).toBe(77);
    expect([...banned].every((t) => model.getTokenAttributes(t).byte)).toBe(true);
  });

  it("bans, after each lead byte, the continuation bytes that would make the sequence invalid", () => {
    expect(bannedAfter(0xe0).has(byteToken(0x9f))).toBe(true);
    expect(bannedAfter(0xe0).has(byteToken(0xa0))).toBe(false);
    expect(bannedAfter(0xed).has(byteToken(0xa0))).toBe(true);
    expect(bannedAfter(0xed).has(byteToken(0x9f))).toBe(false);
    expect(bannedAfter(0xf0).has(byteToken(0x8f))).toBe(true);
    expect(bannedAfter(0xf4).has(byteToken(0x90))).toBe(true);
    expect(bannedAfter(0xc3).has(byteToken(0xa9))).toBe(false);
    // A token that is not a continuation byte is left to the grammar (llama.cpp refuses it there itself): no ban.
    expect(bannedAfter(0xc3).has(byteToken(0x41))).toBe(false);
  });

  it("follows the tokens pushed, and gives one TokenBias per state", () => {
    expect(stateAfter(0xe0, 0xa0)).not.toBe(0);
    expect(stateAfter(0xe0, 0xa0, 0x80)).toBe(0); // U+0800 complete
    expect(stateAfter(0xf0, 0x9f, 0x98, 0x80)).toBe(0); // 😀
    expect(stateAfter(0xc0)).toBe(0); // a banned token forced anyway: back to a clean state
    const guards = new Utf8Guards(model);
    const one = guards.create();
    const two = guards.create();
    expect(one.bias()).toBe(two.bias());
    one.push(byteToken(0xc3));
    expect(one.bias()).not.toBe(two.bias());
  });
});
