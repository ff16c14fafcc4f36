import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { RecordUsageRequestSchema } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { AuthService, Principal, RecordUsageRequest } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { Logger } from "../../../lib/runtime/index.js";

const RECORD_TIMEOUT_MS = 5_000;
// Three fixed waits, then the loss is logged: short enough by hand that p-retry would add a dependency, not clarity.
const RETRY_DELAYS_MS = [200, 1_000, 5_000];
/** A batch leaves when it holds this many records... */
export const MAX_BATCH_RECORDS = 128;
/** ...or this long after its first record arrived... */
export const BATCH_DELAY_MS = 10;
/**
 * ...or when its request logs may reach this many bytes (3 per UTF-16 unit,
 * the most UTF-8 needs), so a batch stays under the 16 MiB gRPC message
 * limit (MAX_MESSAGE_BYTES) however large its requests were.
 */
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** What the edge knows of a finished request: auth.proto's RecordUsageRequest less what the recorder fills in. */
export type UsageEntry = Pick<
  RecordUsageRequest,
  "requestId" | "model" | "backend" | "promptTokens" | "completionTokens" | "status" | "ttftMs" | "e2eMs" | "requestJson" | "responseText"
> & { principal: Principal };

/**
 * Sends each finished request's usage to auth once, off the hot path and in
 * batches: records gather for at most BATCH_DELAY_MS (or MAX_BATCH_RECORDS)
 * and leave in one `RecordUsageBatch` call. Auth de-duplicates on the
 * request id, so retrying a batch never double counts.
 */
export class UsageRecorder {
  #batch: RecordUsageRequest[] = [];
  #batchBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly auth: Client<typeof AuthService>,
    private readonly log: Logger,
  ) {}

  record(entry: UsageEntry): void {
    this.#batch.push(
      create(RecordUsageRequestSchema, {
        requestId: entry.requestId,
        keyId: entry.principal.keyId,
        accountId: entry.principal.accountId,
        model: entry.model,
        backend: entry.backend,
        promptTokens: entry.promptTokens,
        completionTokens: entry.completionTokens,
        status: entry.status,
        ttftMs: entry.ttftMs,
        e2eMs: entry.e2eMs,
        createdAtMs: BigInt(Date.now()),
        requestJson: entry.requestJson,
        responseText: entry.responseText,
      }),
    );
    this.#batchBytes += 3 * (entry.requestJson.length + entry.responseText.length);
    if (this.#batch.length >= MAX_BATCH_RECORDS || this.#batchBytes >= MAX_BATCH_BYTES) this.#send();
    else this.#timer ??= setTimeout(() => this.#send(), BATCH_DELAY_MS);
  }

  /** Sends what is gathered and waits for every batch in flight (shutdown). */
  async flush(): Promise<void> {
    this.#send();
    await Promise.allSettled([...this.#inFlight]);
  }

  #send(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#batch.length === 0) return;
    const records = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const done = this.#deliver(records).finally(() => this.#inFlight.delete(done));
    this.#inFlight.add(done);
  }

  async #deliver(records: RecordUsageRequest[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.auth.recordUsageBatch({ records }, { timeoutMs: RECORD_TIMEOUT_MS });
        return;
      } catch (err) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined) {
          this.log.error({ requestIds: records.map((r) => r.requestId), err: (err as Error).message }, "usage records lost");
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
