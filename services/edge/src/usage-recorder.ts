import type { Client } from "@connectrpc/connect";
import { AuthService } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { Principal, UsageStatus } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { Logger } from "../../../lib/runtime/index.js";

const RECORD_TIMEOUT_MS = 5_000;
const RETRY_DELAYS_MS = [200, 1_000, 5_000];

export interface UsageEntry {
  requestId: string;
  principal: Principal;
  model: string;
  backend: string;
  promptTokens: number;
  completionTokens: number;
  status: UsageStatus;
  ttftMs: number;
  e2eMs: number;
  requestJson: string;
  responseText: string;
}

/**
 * Sends each finished request's usage to auth once, off the hot path.
 * Auth de-duplicates on the request id, so retries never double count.
 */
export class UsageRecorder {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly auth: Client<typeof AuthService>,
    private readonly log: Logger,
  ) {}

  record(entry: UsageEntry): void {
    const done = this.#send(entry).finally(() => this.#pending.delete(done));
    this.#pending.add(done);
  }

  /** Waits for every usage record in flight (shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  async #send(entry: UsageEntry): Promise<void> {
    const request = {
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
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.auth.recordUsage(request, { timeoutMs: RECORD_TIMEOUT_MS });
        return;
      } catch (err) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined) {
          this.log.error({ requestId: entry.requestId, err: (err as Error).message }, "usage record lost");
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
