/**
 * Polls `check` until it holds; fails after `timeoutMs`. Resolves with the
 * milliseconds it took (printed by tests that measure, never asserted).
 */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 10): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return performance.now() - started;
}
