/**
 * Items of a batch with runs of consecutive `mergeable` ones folded into one
 * by `merge` (a run of one stays as it is); the others keep their place. A
 * relay merges the deltas that arrived together (see coalesce) and so
 * forwards one message per batch instead of one per token.
 */
export function mergeRuns<T>(batch: readonly T[], mergeable: (item: T) => boolean, merge: (run: readonly T[]) => T): T[] {
  const out: T[] = [];
  let run: T[] = [];
  const flush = (): void => {
    if (run.length > 0) out.push(run.length === 1 ? run[0] : merge(run));
    run = [];
  };
  for (const item of batch) {
    if (mergeable(item)) {
      run.push(item);
      continue;
    }
    flush();
    out.push(item);
  }
  flush();
  return out;
}
