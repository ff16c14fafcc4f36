/**
 * Writes a tiny random-weight llama-architecture GGUF model that llama.cpp
 * (and so node-llama-cpp) loads and runs. The file is a pure function of the
 * seed and preset: the same inputs give a byte-identical file.
 */
import { GgufWriter } from "./gguf-writer.js";
import { buildTinyVocab } from "./tiny-vocab.js";
import { seededRandom } from "../random.js";

/**
 * Zephyr-style chat template. It emits `bos_token` itself, which is why the
 * model sets `tokenizer.ggml.add_bos_token = false`.
 */
export const TINY_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/** Names of the built-in model sizes. */
export type TinyModelPresetName = "tiny" | "bench";

/** Hyper-parameters of a tiny llama model. */
export interface TinyModelHyperParams {
  /** `general.name`. */
  name: string;
  /** Embedding length (E). */
  embeddingLength: number;
  /** Number of transformer blocks (L). */
  blockCount: number;
  /** Attention heads (H). */
  headCount: number;
  /** Key/value heads (HKV); H must be a multiple of it. */
  headCountKv: number;
  /** Feed-forward hidden size (FF). */
  feedForwardLength: number;
  /** `llama.context_length`. */
  contextLength: number;
}

/** The built-in presets: `tiny` (well under 1 MB) and `bench` (about 110 MB, F32). */
export const TINY_MODEL_PRESETS: Readonly<Record<TinyModelPresetName, Readonly<TinyModelHyperParams>>> = {
  tiny: {
    name: "tiny-llama",
    embeddingLength: 64,
    blockCount: 2,
    headCount: 4,
    headCountKv: 2,
    feedForwardLength: 128,
    contextLength: 4096,
  },
  bench: {
    name: "tiny-llama-bench",
    embeddingLength: 512,
    blockCount: 8,
    headCount: 8,
    headCountKv: 8,
    feedForwardLength: 1536,
    contextLength: 4096,
  },
};

/** Options of {@link writeTinyModel}. */
export interface WriteTinyModelOptions {
  /** PRNG seed for the weights (default 42). */
  seed?: number;
  /** Model size (default `"tiny"`). */
  preset?: TinyModelPresetName;
}

/** What {@link writeTinyModel} wrote. */
export interface WriteTinyModelResult {
  /** The file written (as given). */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** The preset used. */
  preset: string;
}

/** Default seed of {@link writeTinyModel}. */
export const DEFAULT_TINY_MODEL_SEED = 42;
/** Standard deviation of the random weights. */
const WEIGHT_STD = 0.02;
const RMS_EPS = 1e-5;
const ROPE_FREQ_BASE = 10000;

/** FNV-1a 32-bit hash of a string, mixed with a seed. */
function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Approximately normal random values N(0, std²), from an Irwin–Hall sum of
 * four uniforms (pure arithmetic, so bit-identical on every platform).
 * Each tensor gets its own stream, derived from the seed and tensor name.
 */
function randomNormalTensor(seed: number, name: string, count: number, std: number): Float32Array {
  const rand = seededRandom(hashSeed(seed, name));
  const scale = std * Math.sqrt(3); // Var(sum of 4 U(0,1)) = 1/3
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = (rand() + rand() + rand() + rand() - 2) * scale;
  }
  return out;
}

/**
 * Builds a {@link GgufWriter} holding the whole tiny model (metadata and
 * lazily generated tensors), without writing anything.
 */
export function buildTinyModelWriter(hp: TinyModelHyperParams, seed: number): GgufWriter {
  const { embeddingLength: E, blockCount: L, headCount: H, headCountKv: HKV, feedForwardLength: FF } = hp;
  if (E % H !== 0) throw new Error(`embedding length ${E} is not a multiple of head count ${H}`);
  if (H % HKV !== 0) throw new Error(`head count ${H} is not a multiple of kv head count ${HKV}`);
  const vocab = buildTinyVocab();
  const V = vocab.tokens.length;
  const kvDim = (E * HKV) / H;

  const w = new GgufWriter();
  w.addString("general.architecture", "llama");
  w.addString("general.name", hp.name);
  w.addUint32("general.alignment", 32);
  w.addUint32("general.file_type", 0); // ALL_F32
  w.addUint32("llama.context_length", hp.contextLength);
  w.addUint32("llama.embedding_length", E);
  w.addUint32("llama.block_count", L);
  w.addUint32("llama.feed_forward_length", FF);
  w.addUint32("llama.attention.head_count", H);
  w.addUint32("llama.attention.head_count_kv", HKV);
  w.addUint32("llama.rope.dimension_count", E / H);
  w.addFloat32("llama.rope.freq_base", ROPE_FREQ_BASE);
  w.addFloat32("llama.attention.layer_norm_rms_epsilon", RMS_EPS);
  w.addUint32("llama.vocab_size", V);

  w.addString("tokenizer.ggml.model", "llama");
  w.addStringArray("tokenizer.ggml.tokens", vocab.tokens);
  w.addFloat32Array("tokenizer.ggml.scores", vocab.scores);
  w.addInt32Array("tokenizer.ggml.token_type", vocab.tokenTypes);
  w.addUint32("tokenizer.ggml.bos_token_id", vocab.bosId);
  w.addUint32("tokenizer.ggml.eos_token_id", vocab.eosId);
  w.addUint32("tokenizer.ggml.unknown_token_id", vocab.unkId);
  w.addBool("tokenizer.ggml.add_bos_token", false);
  w.addBool("tokenizer.ggml.add_eos_token", false);
  w.addString("tokenizer.chat_template", TINY_CHAT_TEMPLATE);

  const rand = (name: string, dims: number[]): void => {
    const count = dims.reduce((a, b) => a * b, 1);
    w.addTensorF32(name, dims, () => randomNormalTensor(seed, name, count, WEIGHT_STD));
  };
  const ones = (name: string, n: number): void => {
    w.addTensorF32(name, [n], () => new Float32Array(n).fill(1));
  };

  rand("token_embd.weight", [E, V]);
  ones("output_norm.weight", E);
  rand("output.weight", [E, V]);
  for (let i = 0; i < L; i++) {
    const p = `blk.${i}`;
    ones(`${p}.attn_norm.weight`, E);
    rand(`${p}.attn_q.weight`, [E, E]);
    rand(`${p}.attn_k.weight`, [E, kvDim]);
    rand(`${p}.attn_v.weight`, [E, kvDim]);
    rand(`${p}.attn_output.weight`, [E, E]);
    ones(`${p}.ffn_norm.weight`, E);
    rand(`${p}.ffn_gate.weight`, [E, FF]);
    rand(`${p}.ffn_up.weight`, [E, FF]);
    rand(`${p}.ffn_down.weight`, [FF, E]);
  }
  return w;
}

/**
 * Writes a tiny random-weight llama GGUF to `outPath` (atomically: via a
 * temporary file and a rename). Same seed and preset → byte-identical file.
 *
 * @param outPath destination file (its directory must exist)
 * @param options `seed` (default 42) and `preset` (`"tiny"` by default, or `"bench"`, ~110 MB)
 */
export async function writeTinyModel(outPath: string, options: WriteTinyModelOptions = {}): Promise<WriteTinyModelResult> {
  const preset = options.preset ?? "tiny";
  const hp = TINY_MODEL_PRESETS[preset];
  if (!hp) throw new Error(`unknown tiny model preset: ${String(preset)}`);
  const seed = options.seed ?? DEFAULT_TINY_MODEL_SEED;
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const bytes = await buildTinyModelWriter(hp, seed).write(outPath);
  return { path: outPath, bytes, preset };
}
