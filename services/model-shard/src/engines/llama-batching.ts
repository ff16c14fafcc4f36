/**
 * Keeping every running sequence's next token in one llama_decode.
 *
 * How node-llama-cpp 3.22 dispatches (dist/evaluator/LlamaContext/LlamaContext.js):
 * a sequence queues its next decode when its `evaluate()` iterator is asked
 * for the next token (`_decodeTokens` pushes onto `context._queuedDecodes`
 * and calls `_scheduleDecode`). The first queued decode schedules one
 * dispatch (`dispatchSchedule`, default the next event-loop cycle; at once if
 * every sequence of the context is queued). The dispatch takes the context
 * lock and loops: order the queue (`itemPrioritizationStrategy`), fill one
 * batch, `decodeBatch()`, sample each sequence on the thread pool, resolve
 * each sequence as its sampling ends, then decode again at once if anything
 * is queued by then. Sequences finish sampling at different times and ask for
 * their next token at different times (their consumers differ too), so the
 * loop keeps decoding whichever subset has queued, and a dispatch schedule
 * alone cannot help: the loop does not consult it.
 *
 * The fix here is a step barrier in front of node-llama-cpp: a decoding
 * sequence asks for its next token only once every decoding sequence has its
 * previous token (or after MAX_STEP_WAIT_MS). The release runs on a later
 * event-loop cycle, when the dispatch loop has found the queue empty and
 * ended, so all the released sequences queue within one microtask flush and
 * the next dispatch takes them all. Batches are then ordered by sequence id,
 * because the addon's KV cache is not unified and llama.cpp splits a batch
 * into runs of consecutive sequence ids.
 *
 * The barrier costs nothing when nobody can join a step: a sequence decoding
 * alone passes at once (no timer, no event-loop turn). A sequence still
 * evaluating its prompt is not a member: nobody waits for it, it joins the
 * step being gathered if there is one, and becomes a member with its first
 * token. Its prompt is evaluated in chunks of at most PREFILL_CHUNK_TOKENS
 * per batch while other sequences decode (chunked prefill, as llama-server
 * and vLLM do), so a long prompt delays the running streams' next token by
 * one chunk's compute instead of the whole prompt's.
 */
import type { BatchItem, CustomBatchingPrioritizationStrategy, LlamaContext, PrioritizedBatchItem, Token } from "node-llama-cpp";

/** How long the first sequence at the barrier waits at most for the others. */
export const MAX_STEP_WAIT_MS = 20;

/** Prompt tokens one batch evaluates at most while other sequences are decoding. */
export const PREFILL_CHUNK_TOKENS = 128;

/**
 * A barrier that releases the decoding sequences together, one decode step
 * at a time. A new sequence calls `enter` before its prompt (it waits only
 * if a step is being gathered, to share its batch), `join` after its first
 * token, `arrive` before each later step, `leave` when it stops generating
 * (`leave` only if it joined).
 */
export class DecodeStepper {
  /** Steps released and sequences they held: their ratio is the mean step width. */
  readonly stats = { steps: 0, sequences: 0 };
  #members = 0;
  #waiting: Array<() => void> = [];
  #guests: Array<() => void> = [];
  #releaseScheduled = false;
  #bound: NodeJS.Timeout | undefined;

  constructor(private readonly maxWaitMs = MAX_STEP_WAIT_MS) {}

  /** Sequences decoding (past their prompt). */
  get members(): number {
    return this.#members;
  }

  join(): void {
    this.#members++;
  }

  leave(): void {
    this.#members = Math.max(0, this.#members - 1);
    this.#maybeRelease();
  }

  /**
   * Before a new sequence's prompt: undefined (go now) unless a step is
   * being gathered, then a promise released with that step.
   */
  enter(): Promise<void> | undefined {
    if (this.#waiting.length === 0) return undefined;
    return new Promise((resolve) => this.#guests.push(resolve));
  }

  /**
   * Before a member's next step: undefined (go now) when it is the only
   * member and nobody waits, else a promise that resolves when every member
   * has arrived, or MAX_STEP_WAIT_MS after the first arrival.
   */
  arrive(): Promise<void> | undefined {
    if (this.#members <= 1 && this.#waiting.length === 0) {
      this.stats.steps++;
      this.stats.sequences++;
      return undefined;
    }
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      if (this.#waiting.length === 1 && this.maxWaitMs > 0) {
        this.#bound = setTimeout(() => this.#scheduleRelease(), this.maxWaitMs);
      }
      this.#maybeRelease();
    });
  }

  #maybeRelease(): void {
    if (this.#waiting.length > 0 && this.#waiting.length >= this.#members) this.#scheduleRelease();
  }

  /** Releases on the next cycle: node-llama-cpp's dispatch loop has ended by then. */
  #scheduleRelease(): void {
    if (this.#releaseScheduled) return;
    this.#releaseScheduled = true;
    setImmediate(() => {
      this.#releaseScheduled = false;
      clearTimeout(this.#bound);
      this.#bound = undefined;
      const released = this.#waiting;
      const guests = this.#guests;
      this.#waiting = [];
      this.#guests = [];
      if (released.length > 0) {
        this.stats.steps++;
        this.stats.sequences += released.length;
      }
      for (const resolve of released) resolve();
      for (const resolve of guests) resolve();
    });
  }
}

/** What node-llama-cpp keeps per queued decode (internal; read only to learn each item's sequence id). */
interface QueuedDecode {
  tokens: readonly Token[];
  sequenceId: number;
}

/**
 * Batch items ordered by sequence id, each given an equal share of the
 * batch; while `decoding()` sequences decode, prompts are chunked (see
 * capPrefill). Items whose sequence cannot be told keep their place at the
 * end. `stats` counts dispatched batches and the items they held.
 */
export function sequenceOrderStrategy(
  context: () => LlamaContext | undefined,
  stats?: { batches: number; items: number },
  decoding: () => number = () => 0,
  prefillChunkTokens = PREFILL_CHUNK_TOKENS,
): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    if (stats) {
      stats.batches++;
      stats.items += items.length;
    }
    const created = context();
    const queued = created ? queuedDecodes(created) : [];
    const ids = new Map<readonly Token[], number>(queued.map((q) => [q.tokens, q.sequenceId]));
    const ordered = [...items].sort((a, b) => (ids.get(a.tokens) ?? Infinity) - (ids.get(b.tokens) ?? Infinity));
    const shares = fairShare(ordered, size);
    return decoding() > 0 ? capPrefill(shares, prefillChunkTokens) : shares;
  };
}

/**
 * Chunked prefill: while sequences decode, the prompt items (more than one
 * token) of a batch share at most `chunkTokens` tokens; each keeps at least
 * one so every prompt advances. Decode items (one token) are untouched.
 */
export function capPrefill(shares: PrioritizedBatchItem[], chunkTokens: number): PrioritizedBatchItem[] {
  let left = chunkTokens;
  for (const share of shares) {
    if (share.item.tokens.length <= 1) continue;
    share.processAmount = Math.max(1, Math.min(share.processAmount, left));
    left = Math.max(0, left - share.processAmount);
  }
  return shares;
}

/** The decodes node-llama-cpp has queued (an internal field, read only; empty if it is ever renamed). */
function queuedDecodes(context: LlamaContext): readonly QueuedDecode[] {
  const queued = (context as unknown as { _queuedDecodes?: QueuedDecode[] })._queuedDecodes;
  return Array.isArray(queued) ? queued : [];
}

/** Every item gets an equal share of `size` tokens; what is left goes to items still wanting more, in order. */
export function fairShare(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const result: PrioritizedBatchItem[] = [];
  let left = size;
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  for (const item of items) {
    if (left <= 0) break;
    const amount = Math.min(item.tokens.length, share, left);
    result.push({ item, processAmount: amount });
    left -= amount;
  }
  for (const entry of result) {
    if (left <= 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return result;
}
