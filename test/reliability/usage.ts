import * as path from "node:path";
import Database from "libsql";
import { fromBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { connectNats, meshNatsNames, scanStream } from "../../lib/nats/index.js";

import { UsageEventSchema } from "../../src/gen/mesh/events/v1/events_pb.js";
import type { Outcome } from "./load.js";

/** How many usage records each request id has, against the requests that completed. */
export interface UsageCheck {
  completed: number;
  /** Completed requests without a usage record. */
  missing: string[];
  /** Request ids recorded more than once. */
  duplicated: string[];
  /** Records in all (completed or not). */
  records: number;
}

/** Completed requests (answered 200 and read to their end) and their mesh request ids. */
export function completedIds(outcomes: Outcome[]): string[] {
  return outcomes.filter((o) => o.result === "ok" && o.requestId).map((o) => o.requestId!);
}

function check(ids: string[], counts: Map<string, number>): UsageCheck {
  return {
    completed: ids.length,
    missing: ids.filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    records: [...counts.values()].reduce((a, b) => a + b, 0),
  };
}

/** Polls until every id has a record or `waitMs` passed (the edge records after the response, in batches). */
async function poll(ids: string[], waitMs: number, read: () => Promise<Map<string, number>>): Promise<UsageCheck> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const result = check(ids, await read());
    if (result.missing.length === 0 || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Usage rows per request id in the mesh's SQLite file (the embedded default). */
export function sqliteUsage(dataDir: string, ids: string[], waitMs = 30_000): Promise<UsageCheck> {
  return poll(ids, waitMs, async () => {
    const db = new Database(path.join(dataDir, "mesh.db"), { readonly: true });
    try {
      const counts = new Map<string, number>();
      for (const row of db.prepare("SELECT request_id, COUNT(*) AS n FROM usage GROUP BY request_id").all() as Array<{ request_id: string; n: number }>) {
        counts.set(row.request_id, row.n);
      }
      return counts;
    } finally {
      db.close();
    }
  });
}

/** Usage events per request id in the JetStream usage stream at `natsUrl` (cluster mode). */
export async function natsUsage(natsUrl: string, ids: string[], waitMs = 60_000): Promise<UsageCheck> {
  const nc = await connectNats({ url: natsUrl, name: "reliability-usage-check" });
  try {
    const names = meshNatsNames();
    const js = jetstream(nc);
    return await poll(ids, waitMs, async () => {
      const counts = new Map<string, number>();
      await scanStream(js, names.usageStream, {}, (msg) => {
        const { requestId } = fromBinary(UsageEventSchema, msg.data);
        counts.set(requestId, (counts.get(requestId) ?? 0) + 1);
      });
      return counts;
    });
  } finally {
    await nc.close();
  }
}

/** "N completed, M records, K missing, D duplicated" for the printed figure. */
export function usageSummary(u: UsageCheck): string {
  return `${u.completed} completed, ${u.records} usage records, ${u.missing.length} missing, ${u.duplicated.length} duplicated`;
}
