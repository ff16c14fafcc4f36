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
 * The fix here is a step barrier in front of node-llama-cpp: a sequence asks
 * for its next token only once every sequence mid-generation has its previous
 * token (or after MAX_STEP_WAIT_MS). The release runs on a later event-loop
 * cycle, when the dispatch loop has found the queue empty and ended, so all
 * the released sequences queue within one microtask flush and the next
 * dispatch takes them all. Batches are then ordered by sequence id, because
 * the addon's KV cache is not unified and llama.cpp splits a batch into runs
 * of consecutive sequence ids.
 */
import type { BatchItem, CustomBatchingPrioritizationStrategy, LlamaContext, PrioritizedBatchItem, Token } from "node-llama-cpp";

/** How long the first sequence at the barrier waits at most for the others. */
export const MAX_STEP_WAIT_MS = 20;

/**
 * A barrier that releases the sequences mid-generation together, one decode
 * step at a time. `join` before a sequence's first step, `arrive` before each
 * step (including the first, so a new prompt is evaluated in the same batch
 * as the others' next tokens), `leave` when it stops generating.
 */
export class DecodeStepper {
  /** Steps released and sequences they held: their ratio is the mean step width. */
  readonly stats = { steps: 0, sequences: 0 };
  #members = 0;
  #waiting: Array<() => void> = [];
  #releaseScheduled = false;
  #bound: NodeJS.Timeout | undefined;

  constructor(private readonly maxWaitMs = MAX_STEP_WAIT_MS) {}

  /** Sequences mid-generation. */
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

  /** Resolves when every member has arrived, or MAX_STEP_WAIT_MS after the first arrival. */
  arrive(): Promise<void> {
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
      this.#waiting = [];
      if (released.length === 0) return;
      this.stats.steps++;
      this.stats.sequences += released.length;
      for (const resolve of released) resolve();
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
 * batch. Items whose sequence cannot be told keep their place at the end.
 * `stats` counts dispatched batches and the items they held.
 */
export function sequenceOrderStrategy(
  context: () => LlamaContext | undefined,
  stats?: { batches: number; items: number },
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
    return fairShare(ordered, size);
  };
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
