/** Most chunks merged into one message. */
export const MAX_CHUNKS_PER_MESSAGE = 64;

const TICK = Symbol("tick");
const nextTick = (): Promise<typeof TICK> => new Promise((resolve) => setImmediate(() => resolve(TICK)));

/**
 * Groups what a generator yields into batches of the items that are ready
 * at once: the first item is awaited, then items keep being taken while each
 * next one is already settled by the next event-loop turn. A slow engine
 * (one token per decode) gets one item per batch, so latency is unchanged;
 * a fast one (an upstream streaming a burst) gets one message per burst
 * instead of one per token, which is what every hop pays for. A relay that
 * falls behind (its messages queue up) forwards each queue as one batch.
 * Returns the generator's own return value.
 */
export async function* coalesce<T, R>(source: AsyncIterator<T, R>): AsyncGenerator<T[], R> {
  let pending = source.next();
  try {
    for (;;) {
      const first = await pending;
      if (first.done) return first.value;
      const batch = [first.value];
      pending = source.next();
      // One turn of the event loop per batch: what is ready before it joins.
      const turnEnds = nextTick();
      while (batch.length < MAX_CHUNKS_PER_MESSAGE) {
        // A source that fails: what came before the failure goes out first (the failure on the next pull).
        const next = await Promise.race([pending, turnEnds]).catch((): typeof TICK => TICK);
        if (next === TICK) break;
        if (next.done) {
          yield batch;
          return next.value;
        }
        batch.push(next.value);
        pending = source.next();
      }
      yield batch;
    }
  } finally {
    // The consumer stopped early: end the source too (after its pending step),
    // and only then end, so the caller's return() resolves once the source let go.
    await pending.then(() => source.return?.(undefined as R)).catch(() => {});
  }
}
