import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { ConnectError } from "@connectrpc/connect";
import type { Catalog } from "../../../lib/catalog/index.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";
import type { EncodedPrompt } from "./prompt-encoder.js";
import { encodeJob, jobChars, precheckJob, WORKER_EXIT } from "./tokenizer-jobs.js";
import type { TokenizerJob, TokenizerJobResult, TokenizerWork } from "./tokenizer-jobs.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";

/** Inputs up to this many characters are encoded inline: well under a millisecond, not worth a thread hop. */
export const INLINE_MAX_CHARS = 8_192;
/** A job running longer than this is abandoned (its worker replaced) and answered DeadlineExceeded. */
export const DEFAULT_JOB_TIMEOUT_MS = 10_000;
/** Jobs waiting for a worker beyond this answer ResourceExhausted at once. */
export const DEFAULT_MAX_QUEUED_JOBS = 256;

export interface TokenizerPoolOptions {
  /** Worker threads for large inputs (0: everything inline, for tests of the inline path only). */
  workers: number;
  jobTimeoutMs?: number;
  maxQueuedJobs?: number;
  inlineMaxChars?: number;
}

type Job = TokenizerWork;

interface Pending {
  job: TokenizerJob;
  resolve(value: EncodedPrompt): void;
  reject(error: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy?: { pending: Pending; timer: NodeJS.Timeout };
  /** Loaded an older catalog: leaves once its job is done. */
  stale?: boolean;
}

/**
 * Chat templating and tokenizing for the request path. Small inputs run
 * inline; large ones run in worker threads, so a megabyte prompt never blocks
 * the event loop of the process serving everyone else. Each job has a time
 * limit (its worker is replaced when it passes), a job whose caller left
 * before it started is dropped, and the wait queue is bounded.
 */
export class TokenizerPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  readonly #timeoutMs: number;
  readonly #maxQueued: number;
  readonly #inlineMax: number;
  readonly #workers: number;
  #nextId = 1;
  #closed = false;

  constructor(
    private catalog: Catalog,
    private readonly tokenizers: Map<string, ModelTokenizer>,
    private readonly log: Logger,
    options: TokenizerPoolOptions,
  ) {
    this.#timeoutMs = options.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    this.#maxQueued = options.maxQueuedJobs ?? DEFAULT_MAX_QUEUED_JOBS;
    this.#inlineMax = options.workers > 0 ? (options.inlineMaxChars ?? INLINE_MAX_CHARS) : Infinity;
    this.#workers = options.workers;
  }

  /**
   * Starts the workers now and resolves once each has loaded its tokenizers.
   * Without it they start with the first large prompt (an idle mesh holds
   * no second copy of every vocabulary).
   */
  async ready(): Promise<void> {
    this.#ensureWorkers();
    await Promise.all(this.#slots.map((s) => s.ready));
  }

  /** The tokenizers this pool encodes with inline (shared with in-process callers). */
  get loaded(): ReadonlyMap<string, ModelTokenizer> {
    return this.tokenizers;
  }

  /**
   * Serves `model` with `tokenizer` from now on (a model added at run time):
   * inline at once; workers that loaded the older catalog finish their job
   * and are replaced by ones that load the new one.
   */
  addModel(model: Catalog["models"][number], tokenizer: ModelTokenizer): void {
    this.tokenizers.set(model.name, tokenizer);
    this.#setModels([...this.catalog.models.filter((m) => m.name !== model.name), model]);
  }

  /** Stops serving `name` (a model removed at run time). */
  removeModel(name: string): void {
    if (!this.tokenizers.delete(name)) return;
    this.#setModels(this.catalog.models.filter((m) => m.name !== name));
  }

  #setModels(models: Catalog["models"]): void {
    this.catalog = { ...this.catalog, models };
    for (const slot of [...this.#slots]) {
      if (slot.busy) slot.stale = true;
      else this.#retire(slot);
    }
  }

  #retire(slot: Slot): void {
    const index = this.#slots.indexOf(slot);
    if (index >= 0) this.#slots.splice(index, 1);
    void stopWorker(slot);
  }

  #ensureWorkers(): void {
    while (!this.#closed && this.#slots.length < this.#workers) this.#slots.push(this.#spawn());
  }

  /** Renders and encodes a conversation (specials only from the template). */
  encodeChat(model: string, messages: readonly TemplateMessage[], signal?: AbortSignal, tools: readonly ToolFunction[] = []): Promise<EncodedPrompt> {
    return this.#run({ kind: "chat", model, messages: messages as TemplateMessage[], addGenerationPrompt: true, tools: tools as ToolFunction[] }, signal);
  }

  /** Encodes a raw completion prompt (specials off, the model's BOS first). */
  encodeCompletion(model: string, text: string, signal?: AbortSignal): Promise<EncodedPrompt> {
    return this.#run({ kind: "completion", model, text }, signal);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(meshError(Code.Unavailable, "the tokenizer is shutting down"));
    await Promise.all(this.#slots.map((s) => stopWorker(s, s.busy ? BUSY_WORKER_EXIT_TIMEOUT_MS : WORKER_EXIT_TIMEOUT_MS)));
  }

  #run(job: Job, signal?: AbortSignal): Promise<EncodedPrompt> {
    if (signal?.aborted) return Promise.reject(new ConnectError("cancelled", Code.Canceled));
    if (jobChars(job) <= this.#inlineMax) {
      try {
        return Promise.resolve(encodeJob(this.tokenizers, job));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    try {
      // Cheap refusals (unknown model, too many bytes for the context) need no thread.
      precheckJob(this.tokenizers, job);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.reject(meshError(Code.Unavailable, "the tokenizer is shutting down"));
    if (this.#queue.length >= this.#maxQueued) {
      return Promise.reject(meshError(Code.ResourceExhausted, "too many large prompts are waiting to be tokenized; retry later", { reason: "overloaded" }));
    }
    return new Promise((resolve, reject) => {
      // Only what the worker reads crosses the thread (the inline path above uses the messages as they are).
      const plain: Job = job.kind === "chat" ? { ...job, messages: job.messages.map(plainMessage), tools: job.tools?.map(plainTool) } : job;
      const pending: Pending = { job: { ...plain, id: this.#nextId++ }, resolve, reject, signal };
      if (signal) {
        pending.onAbort = () => {
          const at = this.#queue.indexOf(pending);
          if (at >= 0) this.#queue.splice(at, 1);
          reject(new ConnectError("cancelled", Code.Canceled));
        };
        signal.addEventListener("abort", pending.onAbort, { once: true });
      }
      this.#queue.push(pending);
      this.#ensureWorkers();
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy) continue;
      const pending = this.#queue.shift();
      if (!pending) return;
      const timer = setTimeout(() => this.#expire(slot), this.#timeoutMs);
      slot.busy = { pending, timer };
      slot.worker.postMessage(pending.job);
    }
  }

  #settle(slot: Slot, result: TokenizerJobResult): void {
    const busy = slot.busy;
    if (!busy || busy.pending.job.id !== result.id) return;
    clearTimeout(busy.timer);
    slot.busy = undefined;
    const { pending } = busy;
    if (pending.onAbort) pending.signal?.removeEventListener("abort", pending.onAbort);
    if ("error" in result) pending.reject(new ConnectError(result.error.message, result.error.code, new Headers(result.error.metadata)));
    else pending.resolve({ tokenIds: Array.from(result.tokenIds), contextLength: result.contextLength });
    if (slot.stale) {
      this.#retire(slot);
      if (this.#queue.length > 0) this.#ensureWorkers();
    }
    this.#dispatch();
  }

  #expire(slot: Slot): void {
    const busy = slot.busy;
    if (!busy) return;
    slot.busy = undefined;
    busy.pending.reject(meshError(Code.DeadlineExceeded, `tokenizing the prompt took longer than ${this.#timeoutMs} ms`, { reason: "tokenizer_timeout" }));
    this.log.warn({ timeoutMs: this.#timeoutMs }, "tokenizer job timed out: replacing its worker");
    // The old worker ends once its (bounded) job is done: terminating it inside llama.cpp's tokenizer can crash the process.
    void stopWorker(slot, BUSY_WORKER_EXIT_TIMEOUT_MS);
    const index = this.#slots.indexOf(slot);
    if (index >= 0 && !this.#closed) this.#slots[index] = this.#spawn();
    this.#dispatch();
  }

  #spawn(): Slot {
    const worker = new Worker(workerFile(), { workerData: { catalog: this.catalog } });
    worker.unref();
    const slot: Slot = {
      worker,
      ready: new Promise<void>((resolve, reject) => {
        worker.once("error", reject);
        worker.once("message", () => resolve());
      }),
    };
    slot.ready.then(
      () => {
        worker.on("message", (result: TokenizerJobResult) => this.#settle(slot, result));
        this.#dispatch();
      },
      (err: unknown) => this.log.error({ err: (err as Error).message }, "tokenizer worker failed to start"),
    );
    worker.on("error", (err) => {
      this.log.error({ err: err.message }, "tokenizer worker failed");
      if (slot.busy) this.#expire(slot);
    });
    return slot;
  }
}

/**
 * The worker's compiled file. Under vitest this module is TypeScript source,
 * and worker threads run JavaScript only: the build's copy in dist/ is used.
 */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = path.join(path.dirname(here), "tokenizer-worker.js");
  if (!here.endsWith(".ts")) return sibling;
  const root = path.resolve(path.dirname(here), "../../..");
  const built = path.join(root, "dist", path.relative(root, sibling));
  if (!existsSync(built)) throw new Error(`tokenizer worker not built: ${built} (run npm run build)`);
  return built;
}

/** A message as plain data (structured-clonable for a worker): tool calls and results kept. */
function plainMessage(m: TemplateMessage): TemplateMessage {
  const out: TemplateMessage = { role: m.role, content: m.content };
  if (m.toolCalls?.length) out.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
  if (m.toolCallId) out.toolCallId = m.toolCallId;
  if (m.name) out.name = m.name;
  return out;
}

function plainTool(t: ToolFunction): ToolFunction {
  return { name: t.name, description: t.description ?? "", parametersJson: t.parametersJson };
}

/** How long an idle worker may take to free its vocabularies and end before it is terminated. */
const WORKER_EXIT_TIMEOUT_MS = 5_000;
/** The same for a worker still running a job (it ends after the job: jobs are bounded by the prompt limits). */
const BUSY_WORKER_EXIT_TIMEOUT_MS = 60_000;

/**
 * Ends an idle worker the way it can end safely: once it started, it frees llama.cpp's objects and
 * ends its own thread (terminate() with a vocabulary loaded crashed the process now and then);
 * terminated only if it is still starting, or does not end in time. A busy worker reads the exit
 * message after its job.
 */
async function stopWorker(slot: Slot, timeoutMs = WORKER_EXIT_TIMEOUT_MS): Promise<void> {
  const { worker } = slot;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const ended = new Promise<true>((resolve) => worker.once("exit", () => resolve(true)));
  const started = await Promise.race([
    slot.ready.then(
      () => true,
      () => false,
    ),
    late,
    ended.then(() => false),
  ]);
  if (started) worker.postMessage(WORKER_EXIT);
  const exited = started && (await Promise.race([ended, late]));
  clearTimeout(timer);
  if (!exited) await worker.terminate();
}
