import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getLlama, LlamaLogLevel, TokenBias } from "node-llama-cpp";
import type { LlamaModel, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../../lib/gguf/tiny-model.js";
import { bannedBytes, nextPending, Utf8Guard, Utf8Guards, utf8Vocabulary, vocabularySize } from "./llama-utf8-guard.js";
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
    expect(valid(bytes as number[])).toBe(expected);
  });
});

describe("the guard on the tiny model's byte tokens", () => {
  let model: LlamaModel;
  let vocabulary: Utf8Vocabulary;
  let dir: string;
  /** The tiny vocabulary's byte token for a byte (`<0xNN>`, ids 3…258). */
  const byteToken = (b: number) => [...vocabulary.bytes].find(([, v]) => v === b)?.[0];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "utf8-guard-"));
    const modelPath = path.join(dir, "tiny.gguf");
    await writeTinyModel(modelPath);
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false });
    model = await llama.loadModel({ modelPath });
    vocabulary = utf8Vocabulary(model, vocabularySize(model));
  });
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds every byte token that valid UTF-8 uses, and leaves the others unknown (banned)", () => {
    const found = new Set(vocabulary.bytes.values());
    for (let b = 0x80; b <= 0xbf; b++) expect(found.has(b), `continuation ${b.toString(16)}`).toBe(true);
    for (let b = 0xc2; b <= 0xf4; b++) expect(found.has(b), `lead ${b.toString(16)}`).toBe(true);
    for (const b of [0xc0, 0xc1, 0xf5, 0xf8, 0xff]) expect(found.has(b)).toBe(false);
    // C0, C1 and F5–FF: 13 byte tokens no valid UTF-8 contains, each on its own not text.
    expect(vocabulary.unknown).toHaveLength(13);
    for (const t of vocabulary.unknown) expect(model.detokenize([t])).toBe("\uFFFD");
  });

  it("bans, after each lead byte, the continuation bytes that would make the sequence invalid", () => {
    const bans = (lead: number) => new Set(bannedBytes(vocabulary, nextPending(NONE, lead)!).map((t) => vocabulary.bytes.get(t)));
    expect(bans(0xe0).has(0x9f)).toBe(true);
    expect(bans(0xe0).has(0xa0)).toBe(false);
    expect(bans(0xed).has(0xa0)).toBe(true);
    expect(bans(0xed).has(0x9f)).toBe(false);
    expect(bans(0xf0).has(0x8f)).toBe(true);
    expect(bans(0xf4).has(0x90)).toBe(true);
    expect(bans(0xc3).has(0xc3)).toBe(true); // a lead where a continuation is due
    expect(new Set(bannedBytes(vocabulary, NONE).map((t) => vocabulary.bytes.get(t))).has(0xa9)).toBe(true); // a continuation with no lead
  });

  it("asks for the bias of the state the pushed tokens left, one TokenBias kept per state", () => {
    let asked: Parameters<typeof bannedBytes>[1] = NONE;
    const guard = new Utf8Guard(vocabulary, (state) => {
      asked = state;
      return new TokenBias(model.tokenizer);
    });
    const banned = () => {
      guard.bias();
      return new Set([...vocabulary.unknown, ...bannedBytes(vocabulary, asked)]);
    };
    expect(banned().has(vocabulary.unknown[0]!)).toBe(true);
    expect(banned().has(byteToken(0xa0)!)).toBe(true);
    guard.push(byteToken(0xe0)! as Token);
    expect(banned().has(byteToken(0x9f)!)).toBe(true);
    expect(banned().has(byteToken(0xa0)!)).toBe(false);
    guard.push(byteToken(0xa0)! as Token);
    guard.push(byteToken(0x80)! as Token); // U+0800 complete
    expect(banned().has(byteToken(0xa0)!)).toBe(true);
    expect(banned().has(byteToken(0xe0)!)).toBe(false);
    guard.push(byteToken(0xc3)! as Token);
    guard.push(model.tokenize("a")[0]!); // text (the grammar refuses it here; forced, it resets the state)
    guard.bias();
    expect(asked).toEqual(NONE);

    const guards = new Utf8Guards(model);
    const one = guards.create();
    const two = guards.create();
    expect(one.bias()).toBe(two.bias());
    one.push(byteToken(0xc3)! as Token);
    expect(one.bias()).not.toBe(two.bias());
  });
});
