import { JetStreamApiError } from "@nats-io/jetstream";

/**
 * How long a JetStream call is retried across a reconnect or a leader
 * election. Losing a stream's leader node took 5-9 s to recover on a 3-node
 * nats-server 2.9 cluster here (Raft election), so this outlasts it.
 */
export const TRANSIENT_RETRY_BUDGET_MS = 15_000;
const RETRY_WAIT_MS = 100;

/**
 * Whether a JetStream failure may pass by itself: no responders (the stream
 * has no leader yet, or the client is between servers), a timeout, a lost
 * connection, a 503. An API answer such as "wrong last sequence" is final.
 */
export function isTransientNatsError(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.status === 503;
  return err instanceof Error;
}

/**
 * Runs `call`, retrying transient failures until `budgetMs` has passed; the last error is thrown. Kept by hand, not
 * p-retry: a fixed short wait within a time budget, with the NATS classification above, is all it does.
 */
export async function retryTransient<T>(call: () => Promise<T>, budgetMs = TRANSIENT_RETRY_BUDGET_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isTransientNatsError(err) || Date.now() + RETRY_WAIT_MS > deadline) throw err;
      await new Promise((r) => setTimeout(r, RETRY_WAIT_MS));
    }
  }
}
