import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardServiceGenerateRequestSchema } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { FinishReason } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import { asConnectError } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { Observation } from "../../../lib/experiment-stats/index.js";
import { errorType } from "./error-type.js";
import { requestObservation } from "./experiment-metrics.js";
import type { ReplicaSet } from "./replicas.js";

/** Shadow requests in flight at once, per router; beyond it a mirror is skipped (and counted). */
export const MAX_SHADOW_IN_FLIGHT = 32;
/** A shadow request never runs longer than this. */
export const SHADOW_TIMEOUT_MS = 120_000;
/** The error type recorded for a mirror that was skipped because too many were in flight. */
export const SHADOW_SKIPPED = "shadow_skipped";

/**
 * Mirrors requests to a shadow (candidate) backend. Nothing here is awaited
 * by the client's request: the shadow runs on its own abort controller and
 * deadline, its tokens are read and dropped, and its measurements go to
 * `done`. It takes a replica only when one is free of our own mirrors'
 * backlog, so a slow candidate cannot pile up work.
 */
export class ShadowSender {
  #inFlight = 0;
  readonly #stop = new AbortController();

  constructor(
    private readonly log: Logger,
    private readonly maxInFlight = MAX_SHADOW_IN_FLIGHT,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts a mirror of `request` on `target`; returns at once. */
  send(target: ReplicaSet, request: MessageInitShape<typeof ShardServiceGenerateRequestSchema>, done: (observation: Observation) => void): void {
    const replica = target.pick();
    if (!replica || this.#inFlight >= this.maxInFlight) {
      done({ error: SHADOW_SKIPPED });
      return;
    }
    this.#inFlight++;
    replica.inFlight++;
    const startedAt = performance.now();
    let firstTokenAt: number | undefined;
    let promptTokens = 0;
    let completionTokens = 0;
    const run = async (): Promise<string | undefined> => {
      const stream = replica.client.generate(request, { signal: this.#stop.signal, timeoutMs: SHADOW_TIMEOUT_MS });
      for await (const res of stream) {
        if (res.tokenIds.length > 0 && firstTokenAt === undefined) firstTokenAt = performance.now();
        if (res.finishReason !== FinishReason.UNSPECIFIED) {
          promptTokens = res.promptTokens;
          completionTokens = res.completionTokens;
          return undefined;
        }
      }
      return "unavailable";
    };
    void run()
      .then(
        (error) => {
          if (error) replica.failed(Date.now());
          else replica.succeeded();
          return error;
        },
        (err: unknown) => {
          const error = asConnectError(err);
          this.log.debug({ replica: replica.address, code: error.code }, "shadow request failed");
          return errorType(error);
        },
      )
      .then((error) => {
        this.#inFlight--;
        replica.inFlight--;
        done(requestObservation({ startedAt, firstTokenAt, endedAt: performance.now(), promptTokens, completionTokens, error }));
      });
  }

  /** Cancels every mirror in flight (shutdown). */
  close(): void {
    this.#stop.abort();
  }
}
