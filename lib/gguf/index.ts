/**
 * GGUF writing: a generic GGUF v3 writer and a tiny random-weight llama model
 * (with a SentencePiece-style vocabulary) for tests and benchmarks.
 */
export {
  GGUF_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GGML_TYPE_F32,
  GgufValueType,
  GgufWriter,
  alignUp,
} from "./gguf-writer.js";
export type { GgufMetadataValue, GgufTensorSpec, TensorDataProducer } from "./gguf-writer.js";
export { SPM_SPACE, TokenType, buildTinyVocab, byteToken, tinyVocabPieces } from "./tiny-vocab.js";
export type { TinyVocab } from "./tiny-vocab.js";
export {
  DEFAULT_TINY_MODEL_SEED,
  TINY_CHAT_TEMPLATE,
  TINY_MODEL_PRESETS,
  buildTinyModelWriter,
  mulberry32,
  writeTinyModel,
} from "./tiny-model.js";
export type {
  TinyModelHyperParams,
  TinyModelPresetName,
  WriteTinyModelOptions,
  WriteTinyModelResult,
} from "./tiny-model.js";
