/**
 * A tokenizer pool worker: loads the catalog's tokenizers once, then encodes
 * chats and completion prompts posted by `TokenizerPool`, one at a time.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Catalog } from "../../../lib/catalog/index.js";
import { asConnectError } from "../../../lib/errors.js";
import { encodeJob, WORKER_EXIT } from "./tokenizer-jobs.js";
import type { TokenizerJob, TokenizerJobResult } from "./tokenizer-jobs.js";
import { disposeVocabularies, loadTokenizers } from "./server.js";

const port = parentPort!;
const tokenizers = await loadTokenizers((workerData as { catalog: Catalog }).catalog);
port.on("message", (job: TokenizerJob | typeof WORKER_EXIT) => {
  if (job === WORKER_EXIT) {
    // Ends the thread on its own: llama.cpp's objects freed first, then nothing keeps it alive.
    // (terminate() with a vocabulary loaded crashed the process now and then.)
    void disposeVocabularies().finally(() => port.close());
    return;
  }
  let result: TokenizerJobResult;
  try {
    const encoded = encodeJob(tokenizers, job);
    result = { id: job.id, tokenIds: Uint32Array.from(encoded.tokenIds), contextLength: encoded.contextLength };
  } catch (err) {
    const error = asConnectError(err);
    const metadata: Array<[string, string]> = [];
    error.metadata.forEach((value, key) => metadata.push([key, value]));
    result = { id: job.id, error: { code: error.code, message: error.rawMessage, metadata } };
  }
  port.postMessage(result, "tokenIds" in result ? [result.tokenIds.buffer as ArrayBuffer] : []);
});
port.postMessage({ ready: true });
