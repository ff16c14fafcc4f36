/**
 * Test doubles for the router: a tiny real ShardService gRPC server whose
 * behaviour a test sets (serve, fail before the first token, fail or die
 * after one, answer "queue full"), and a tokenizer client stub.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { pino } from "pino";
import { FinishReason, ShardServiceGenerateResponseSchema, ShardService, WatchLoadResponseSchema } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import type { ShardServiceGenerateRequest, ShardServiceGenerateResponse, WatchLoadResponse } from "../../src/gen/mesh/shard/v1/shard_pb.js";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { Catalog } from "../../lib/catalog/index.js";
import { Code, meshError } from "../../lib/errors.js";
import { startRpcServer } from "../../lib/rpc/index.js";
import type { RpcServer } from "../../lib/rpc/index.js";
import type { PromptEncoder } from "../../services/router/src/router-service.js";

/** What a fake shard does with the next request. */
export type ShardBehaviour = "serve" | "unavailable" | "fail-after-token" | "die-after-token" | "exhausted" | "hang";

/** A real gRPC ShardService on a free port with a settable behaviour. */
export class FakeShard {
  behaviour: ShardBehaviour = "serve";
  /** Tokens per completion. */
  tokens = 3;
  /** Delay before each token, ms. */
  tokenDelayMs = 0;
  calls = 0;
  running = 0;
  server!: RpcServer;
  /** The loopback address it listens on (127.0.0.x, so shards can share a port). */
  host = "127.0.0.1";
  readonly #loadWaiters = new Set<() => void>();

  get address(): string {
    return `${this.host}:${this.server.port}`;
  }

  static async start(init: Partial<Pick<FakeShard, "behaviour" | "tokens" | "tokenDelayMs" | "host">> & { port?: number } = {}): Promise<FakeShard> {
    const { port = 0, ...rest } = init;
    const shard = Object.assign(new FakeShard(), rest);
    shard.server = await startRpcServer({
      host: shard.host,
      port,
      serviceNames: [ShardService.typeName],
      routes: (r) =>
        r.service(ShardService, {
          generate: (req: ShardServiceGenerateRequest, ctx: HandlerContext) => shard.#generate(req, ctx),
          watchLoad: (_req: unknown, ctx: HandlerContext) => shard.#watchLoad(ctx),
        }),
    });
    return shard;
  }

  async *#generate(_req: ShardServiceGenerateRequest, ctx: HandlerContext): AsyncGenerator<ShardServiceGenerateResponse> {
    this.calls++;
    const behaviour = this.behaviour;
    if (behaviour === "unavailable") throw meshError(Code.Unavailable, "fake shard is down");
    if (behaviour === "exhausted") throw meshError(Code.ResourceExhausted, "overloaded: fake queue is full");
    this.running++;
    this.#loadChanged();
    try {
      for (let i = 0; i < this.tokens; i++) {
        if (this.tokenDelayMs > 0) await sleep(this.tokenDelayMs, undefined, { signal: ctx.signal });
        yield create(ShardServiceGenerateResponseSchema, { tokenIds: [100 + i], text: `t${i} ` });
        if (i === 0 && behaviour === "fail-after-token") throw meshError(Code.Unavailable, "fake shard failed mid-stream");
        if (i === 0 && behaviour === "die-after-token") {
          void this.server.close(0);
          await sleep(60_000, undefined, { signal: ctx.signal });
        }
        if (i === 0 && behaviour === "hang") await sleep(60_000, undefined, { signal: ctx.signal });
      }
      yield create(ShardServiceGenerateResponseSchema, { finishReason: FinishReason.LENGTH, promptTokens: 3, completionTokens: this.tokens, engineMs: 1 });
    } finally {
      this.running--;
      this.#loadChanged();
    }
  }

  async *#watchLoad(ctx: HandlerContext): AsyncGenerator<WatchLoadResponse> {
    while (!ctx.signal.aborted) {
      yield create(WatchLoadResponseSchema, { running: this.running, queued: 0, freeSlots: Math.max(0, 4 - this.running) });
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          ctx.signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#loadWaiters.add(wake);
        ctx.signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  #loadChanged(): void {
    for (const wake of this.#loadWaiters) wake();
    this.#loadWaiters.clear();
  }

  close(): Promise<void> {
    return this.server.close(0);
  }
}

/** A tokenizer client that returns three token ids for anything. */
export function fakeTokenizer(contextLength = 2048): PromptEncoder {
  const res = { tokenIds: [1, 2, 3], contextLength };
  return { encodeChat: async () => res, encodeCompletion: async () => res };
}

/** A silent logger. */
export const silentLog = pino({ level: "silent" });

/** A one-model catalog with the given backends (name → replica addresses), defaults filled in by the schema. */
export function catalogOf(backends: Record<string, string[]>, experiments: unknown[] = []): Catalog {
  return catalogSchema.parse({
    models: [{ name: "m", backends: Object.entries(backends).map(([name, addresses]) => ({ name, engine: "sim", replicas: addresses.length, addresses })) }],
    experiments,
  });
}
