/**
 * How many threads llama.cpp gets when the catalog does not say.
 *
 * Why a second thread can make node-llama-cpp 3.22 slower (measured on a
 * 2-vCPU VM: 2 threads decoded the tiny model at 86 tok/s, 1 thread at 511):
 * the addon never attaches a ggml thread pool to its context (llama-server
 * does, `common_threadpools`, or uses OpenMP's persistent team), so every
 * `llama_decode` builds a disposable pool: it creates threads − 1 OS threads
 * and joins them when the graph is done (~80 µs per thread here). Those
 * threads meet at a spinning barrier after every graph node; when one of
 * them is not on a core (the Node main thread doing the per-token work,
 * another mesh service, another process), the others spin through the
 * scheduler's time slice instead of computing. A one-token decode of a
 * small model is a few hundred short nodes, so it loses far more to that
 * than it gains from the second core. A large model's nodes are long
 * enough for more threads to pay.
 *
 * So the default is measured at start: the candidates (1, powers of two,
 * and the cores less one, which stays for the Node main thread and the rest
 * of the process) each decode a few tokens on a scratch context, and more
 * threads win only by a clear margin (MIN_THREAD_GAIN) over fewer. One
 * thread is always a candidate, so the default is never slower than one
 * thread, on any core count; on 2 cores the only candidate is 1.
 */
import * as os from "node:os";
import type { LlamaModel, Token } from "node-llama-cpp";

/** Tokens each candidate decodes after its warm-up. */
export const CALIBRATION_TOKENS = 24;
/** Tokens decoded before timing starts (thread start-up, caches). */
const WARMUP_TOKENS = 4;
/** A candidate stops early once it has spent this long. */
export const CALIBRATION_BUDGET_MS = 1_500;
/** More threads must be at least this much faster than the best fewer (1.15 = 15 %). */
export const MIN_THREAD_GAIN = 1.15;
/** The prompt the calibration evaluates, in tokens. */
const CALIBRATION_PROMPT_TOKENS = 32;

/** The cores this process may use. */
export function availableCores(): number {
  return Math.max(1, os.availableParallelism());
}

/** Thread counts worth trying on `cores` cores: 1, the powers of two below cores − 1, and cores − 1. */
export function threadCandidates(cores: number): number[] {
  const most = Math.max(1, cores - 1);
  const candidates = [1];
  for (let t = 2; t < most; t *= 2) candidates.push(t);
  if (most > 1) candidates.push(most);
  return candidates;
}

/** Decode speed of each candidate and the one chosen. */
export interface ThreadChoice {
  threads: number;
  /** Candidate → decode tokens/s on one sequence (empty when only one candidate). */
  tokensPerSecond: Record<number, number>;
}

/** Picks the fewest threads within MIN_THREAD_GAIN of the fastest more-threads candidate. */
export function pickThreads(speeds: ReadonlyArray<{ threads: number; tokensPerSecond: number }>): number {
  const sorted = [...speeds].sort((a, b) => a.threads - b.threads);
  let best = sorted[0];
  for (const s of sorted.slice(1)) {
    if (best && s.tokensPerSecond >= best.tokensPerSecond * MIN_THREAD_GAIN) best = s;
  }
  return best?.threads ?? 1;
}

/**
 * Measures one-sequence decode speed at each candidate thread count on a
 * scratch context of `model` and picks with {@link pickThreads}.
 */
export async function measureThreads(model: LlamaModel, candidates: readonly number[]): Promise<ThreadChoice> {
  if (candidates.length <= 1) return { threads: candidates[0] ?? 1, tokensPerSecond: {} };
  const prompt = model.tokenize("The quick brown fox jumps over the lazy dog. ".repeat(16)).slice(0, CALIBRATION_PROMPT_TOKENS);
  const speeds: Array<{ threads: number; tokensPerSecond: number }> = [];
  for (const threads of candidates) speeds.push({ threads, tokensPerSecond: await decodeSpeed(model, threads, prompt) });
  return { threads: pickThreads(speeds), tokensPerSecond: Object.fromEntries(speeds.map((s) => [s.threads, Math.round(s.tokensPerSecond * 10) / 10])) };
}

async function decodeSpeed(model: LlamaModel, threads: number, prompt: Token[]): Promise<number> {
  const context = await model.createContext({
    sequences: 1,
    contextSize: 256,
    batchSize: CALIBRATION_PROMPT_TOKENS,
    threads: { ideal: threads, min: threads },
  });
  try {
    const sequence = context.getSequence();
    const started = performance.now();
    let timedFrom = 0;
    let produced = 0;
    for await (const _token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      produced++;
      if (produced === WARMUP_TOKENS) timedFrom = performance.now();
      if (produced >= WARMUP_TOKENS + CALIBRATION_TOKENS || performance.now() - started > CALIBRATION_BUDGET_MS) break;
    }
    const timed = produced - WARMUP_TOKENS;
    // Out of budget before the warm-up ended: so slow that the whole run (prompt included) is the measure.
    if (timed <= 0) return (produced * 1000) / (performance.now() - started);
    return (timed * 1000) / (performance.now() - timedFrom);
  } finally {
    await context.dispose();
  }
}
