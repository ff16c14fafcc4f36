import { DeliverPolicy } from "@nats-io/jetstream";
import type { JetStreamClient, JsMsg, OrderedConsumerOptions } from "@nats-io/jetstream";

/** Messages fetched per pull while scanning. */
const SCAN_BATCH = 1_000;
/** How long one pull waits; only reached when a stream shrinks under the scan. */
const SCAN_PULL_EXPIRES_MS = 1_000;

export interface StreamScanOptions {
  /** Subject filter, e.g. one account's usage subjects. */
  filter?: string;
  /** Start at the first message stored at or after this time (stream time, not a payload field). */
  startTimeMs?: number;
  /** Deliver headers only (no payloads): cheap scans that need only header fields. */
  headersOnly?: boolean;
}

/**
 * Reads the messages of a stream that exist when the scan starts, in order,
 * with an ephemeral ordered consumer. `visit` returns false to stop early.
 */
export async function scanStream(js: JetStreamClient, stream: string, options: StreamScanOptions, visit: (msg: JsMsg) => boolean | void): Promise<void> {
  const opts: Partial<OrderedConsumerOptions> = {};
  if (options.filter) opts.filter_subjects = options.filter;
  if (options.startTimeMs !== undefined && options.startTimeMs > 0) {
    opts.deliver_policy = DeliverPolicy.StartTime;
    opts.opt_start_time = new Date(options.startTimeMs).toISOString();
  }
  if (options.headersOnly) opts.headers_only = true;
  const consumer = await js.consumers.get(stream, opts);
  try {
    let remaining = (await consumer.info(true)).num_pending;
    while (remaining > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(remaining, SCAN_BATCH), expires: SCAN_PULL_EXPIRES_MS });
      let got = 0;
      for await (const msg of batch) {
        got++;
        remaining = msg.info.pending;
        if (visit(msg) === false) return;
        if (remaining === 0) break;
      }
      if (got === 0) return;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
