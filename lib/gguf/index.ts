/**
 * GGUF writing: a generic GGUF v3 writer and a tiny random-weight llama model
 * (with a SentencePiece-style vocabulary) for tests and benchmarks.
 */
export { GgufWriter } from "./gguf-writer.js";
export type { GgufMetadataValue, GgufTensorSpec, TensorDataProducer } from "./gguf-writer.js";
export { buildTinyVocab } from "./tiny-vocab.js";
export type { TinyVocab } from "./tiny-vocab.js";
export { DEFAULT_TINY_MODEL_SEED, TINY_CHAT_TEMPLATE, TINY_MODEL_PRESETS, buildTinyModelWriter, writeTinyModel } from "./tiny-model.js";
export type { TinyModelHyperParams, TinyModelPresetName, WriteTinyModelOptions, WriteTinyModelResult } from "./tiny-model.js";
