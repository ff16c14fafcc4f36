import { create } from "@bufbuild/protobuf";
import type { ConnectError, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { GenerateResponseSchema, ListModelsResponseSchema, ModelInfoSchema } from "../../../src/gen/mesh/router/v1/router_pb.js";
import type { Client } from "@connectrpc/connect";
import type { AuthService, RateLimitStatus } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { EmbedRequest, GenerateRequest, GenerateResponse, RouterService as RouterServiceDesc } from "../../../src/gen/mesh/router/v1/router_pb.js";
import { FinishReason } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { TokenLogprob, ToolCallDelta } from "../../../src/gen/mesh/shard/v1/shard_pb.js";
import type { Catalog, CatalogModel } from "../../../lib/catalog/index.js";
import { systemFingerprintOf } from "../../../lib/catalog/index.js";
import { asConnectError, Code, meshError, withRetryAfter } from "../../../lib/errors.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { errorType } from "./error-type.js";
import { requestObservation, SERVED_ARM } from "./experiment-metrics.js";
import { ExperimentRegistry } from "./experiment-registry.js";
import type { Assignment } from "./experiment-registry.js";
import { ReplicaDiscovery } from "./replica-discovery.js";
import type { Resolver } from "./replica-discovery.js";
import { ReplicaSet } from "./replicas.js";
import type { Replica, ReplicaChoice } from "./replicas.js";
import { ShadowSender } from "./shadow.js";
import { samplingWithTools, toolStreamMode, withToolCalls } from "./tool-calls.js";
import { routeEmbed } from "./embeddings.js";
import { mergeDeltas } from "./merge-deltas.js";
import { coalesce } from "../../../lib/streaming/index.js";
import type { ToolFunction, ToolMessage } from "../../../lib/tool-calls/index.js";
import { endAttempt, RouterTelemetry } from "./router-telemetry.js";
import type { RouterSpan } from "./router-telemetry.js";
import type { RouterMetrics } from "./router-metrics.js";

/** A request that failed before its first token is tried once more elsewhere. */
const MAX_ATTEMPTS = 2;
/** Codes that mean "this replica could not take the request", safe to retry before any token. */
const RETRYABLE_CODES = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted, Code.ResourceExhausted]);
/** Of those, the ones that count against the replica's health (a full queue does not). */
const FAILURE_CODES = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted]);
/** Requests one router admits per model at once (beyond it: 429 with retry-after). */
export const DEFAULT_MAX_IN_FLIGHT_PER_MODEL = 1024;
/** Metadata key (and HTTP header at the edge) saying when to come back, in seconds. */

/**
 * Chat templating and tokenizing on the request path: the tokenizer
 * module itself (services/tokenizer: `TokenizerPool`), in this process.
 */
export interface PromptEncoder {
  encodeChat(
    model: string,
    messages: readonly ToolMessage[],
    signal?: AbortSignal,
    tools?: readonly ToolFunction[],
  ): Promise<{ tokenIds: number[]; contextLength: number }>;
  encodeCompletion(model: string, text: string, signal?: AbortSignal): Promise<{ tokenIds: number[]; contextLength: number }>;
}

/** Tuning of the router. */
export interface RouterOptions {
  maxInFlightPerModel?: number;
  replicaChoice?: ReplicaChoice;
  random?: () => number;
  /** The experiments (default: the catalog's). */
  experiments?: ExperimentRegistry;
  /** Resolves `dns:///` replica addresses (default: the system resolver). */
  resolver?: Resolver;
  /** How often `dns:///` replica addresses are resolved again. */
  resolveIntervalMs?: number;
  /** Prometheus metrics (requests, retries, per arm); absent: none kept. */
  metrics?: RouterMetrics;
  /** Auth, for requests that ask the router to admit them (`admit`): the reservation uses the exact prompt count. */
  auth?: Client<typeof AuthService>;
}

/** How long the router waits for auth's admission decision. */
const ADMIT_TIMEOUT_MS = 2_000;
/** Where a routed model came from. */
export type ModelSource = "catalog" | "added";

interface RoutedModel {
  model: CatalogModel;
  backends: Map<string, ReplicaSet>;
  created: number;
  inFlight: number;
  source: ModelSource;
  /** Set once the model was removed while requests ran: closes its replicas after the last one. */
  release?: () => void;
}

/** What happened to one request, for the experiment's measurements. */
interface Measure {
  startedAt: number;
  firstTokenAt: number | undefined;
  promptTokens: number;
  completionTokens: number;
  error: string | undefined;
  finished: boolean;
}

/**
 * Routes a request: pick the backend (an experiment's sticky arm, a forced
 * arm, or the model's first backend), tokenize in process (the tokenizer module),
 * check the context length, pick a replica by load, stream the shard's tokens
 * back; retry once on another replica before the first token, never after.
 * Experiment requests are measured per arm and may be mirrored to a shadow.
 */
export class RouterService implements ServiceImpl<typeof RouterServiceDesc> {
  readonly #models = new Map<string, RoutedModel>();
  readonly experiments: ExperimentRegistry;
  readonly #shadow: ShadowSender;
  readonly #maxInFlight: number;
  readonly #discovery: ReplicaDiscovery[] = [];
  readonly #telemetry = new RouterTelemetry();
  readonly #metrics: RouterMetrics | undefined;
  readonly #options: RouterOptions;
  #loadWatch: AbortSignal | undefined;

  constructor(
    catalog: Catalog,
    private readonly tokenizer: PromptEncoder,
    private readonly log: Logger,
    options: RouterOptions = {},
  ) {
    const created = Math.floor(Date.now() / 1000);
    for (const model of catalog.models) {
      const backends = new Map(model.backends.map((b) => [b.name, new ReplicaSet(b, options.random, options.replicaChoice)] as const));
      this.#models.set(model.name, { model, backends, created, inFlight: 0, source: "catalog" });
    }
    this.#options = options;
    this.experiments = options.experiments ?? new ExperimentRegistry(catalog.models, catalog.experiments ?? []);
    this.#shadow = new ShadowSender(log);
    this.#maxInFlight = options.maxInFlightPerModel ?? DEFAULT_MAX_IN_FLIGHT_PER_MODEL;
    this.#metrics = options.metrics;
    for (const routed of this.#models.values()) {
      for (const set of routed.backends.values()) {
        if (ReplicaDiscovery.needed(set)) this.#discovery.push(new ReplicaDiscovery(set, log, options.resolver, options.resolveIntervalMs));
      }
    }
  }

  /**
   * Starts resolving the backends' `dns:///NAME:PORT` addresses (one replica
   * per A/AAAA record, re-resolved on an interval) until `signal` aborts;
   * resolves once the first round is applied. A no-op without such addresses.
   */
  async discoverReplicas(signal: AbortSignal): Promise<void> {
    await Promise.all(this.#discovery.map((d) => d.start(signal)));
  }

  /** The replica set of `model`'s backend `backend`, if this router routes it. */
  replicaSet(model: string, backend: string): ReplicaSet | undefined {
    return this.#models.get(model)?.backends.get(backend);
  }

  /** Every replica of every backend. */
  replicas(): Replica[] {
    return [...this.#models.values()].flatMap((m) => [...m.backends.values()].flatMap((s) => s.replicas));
  }

  /**
   * Serves a model added at run time: new requests for it are routed from
   * now on; its replicas come from `setSource` (the launcher's shards file,
   * NATS announcements). False when the name is taken (a catalog model wins).
   */
  addModel(model: CatalogModel): boolean {
    const existing = this.#models.get(model.name);
    if (existing) {
      if (existing.source === "catalog") return false;
      this.removeModel(model.name);
    }
    const backends = new Map(model.backends.map((b) => [b.name, new ReplicaSet(b, this.#options.random, this.#options.replicaChoice)] as const));
    const routed: RoutedModel = { model, backends, created: Math.floor(Date.now() / 1000), inFlight: 0, source: "added" };
    this.#models.set(model.name, routed);
    if (this.#loadWatch) for (const set of backends.values()) set.watchLoad(this.#loadWatch, this.log);
    return true;
  }

  /**
   * Stops routing an added model: new requests get NotFound at once;
   * requests already running on it finish (their replicas' channels close
   * when the last call on them ends). False for catalog or unknown models.
   */
  removeModel(name: string): boolean {
    const routed = this.#models.get(name);
    if (!routed || routed.source !== "added") return false;
    this.#models.delete(name);
    const release = (): void => {
      for (const set of routed.backends.values()) set.setAddresses([]);
    };
    if (routed.inFlight === 0) release();
    else routed.release = release;
    return true;
  }

  /** Where a routed model came from; undefined when it is not routed. */
  sourceOf(name: string): ModelSource | undefined {
    return this.#models.get(name)?.source;
  }

  /** Starts following every replica's load reports. */
  watchLoad(signal: AbortSignal): void {
    this.#loadWatch = signal;
    for (const routed of this.#models.values()) for (const set of routed.backends.values()) set.watchLoad(signal, this.log);
    signal.addEventListener("abort", () => this.#shadow.close(), { once: true });
  }

  listModels() {
    return create(ListModelsResponseSchema, {
      models: [...this.#models.values()].map(({ model, created, source }) =>
        create(ModelInfoSchema, {
          name: model.name,
          contextLength: model.context_length ?? 0,
          backends: model.backends.map((b) => b.name),
          ownedBy: "llm-mesh",
          created: BigInt(created),
          source,
        }),
      ),
    });
  }

  /** Embeddings on the model's first backend (embeddings.ts: routing, retry). */
  embed(req: EmbedRequest, ctx: HandlerContext) {
    const routed = this.#models.get(req.model);
    if (!routed) throw meshError(Code.NotFound, `The model \`${req.model}\` does not exist`, { reason: "model_not_found", param: "model" });
    return routeEmbed(routed.model, routed.backends.values().next().value!, req, ctx, this.log);
  }

  async *generate(req: GenerateRequest, ctx: HandlerContext): AsyncGenerator<GenerateResponse> {
    const measure: Measure = { startedAt: performance.now(), firstTokenAt: undefined, promptTokens: 0, completionTokens: 0, error: undefined, finished: false };
    const routed = this.#models.get(req.model);
    if (!routed) throw meshError(Code.NotFound, `The model \`${req.model}\` does not exist`, { reason: "model_not_found", param: "model" });
    if (!req.sampling) throw meshError(Code.InvalidArgument, "sampling parameters are required");
    if (routed.inFlight >= this.#maxInFlight) {
      throw withRetryAfter(
        meshError(Code.ResourceExhausted, `model "${req.model}" is overloaded: ${routed.inFlight} requests in flight; retry later`, { reason: "overloaded" }),
        1_000,
      );
    }
    const { backend, assignment } = this.#chooseBackend(routed, req);
    const toolMode = toolStreamMode(routed.model, backend.backend, req);
    // Tool calls read out of the text take text away from the content, so its entries would no longer spell it.
    if (toolMode && req.sampling.logprobs) {
      const message = "logprobs are not served together with tools on this model's in-process engine (its tool calls are parsed from the text)";
      throw meshError(Code.InvalidArgument, message, { reason: "unsupported_parameter", param: "logprobs" });
    }
    const span = this.#telemetry.begin(req, ctx.requestHeader);
    span?.routed(backend.backend.name, assignment?.entry.config.name, assignment?.arm);
    routed.inFlight++;
    let failure: ConnectError | undefined;
    try {
      yield* withToolCalls(this.#serve(routed, backend, assignment, req, ctx, measure, span), toolMode);
    } catch (err) {
      const error = asConnectError(err);
      failure = error;
      measure.error = ctx.signal.aborted ? "cancelled" : errorType(error);
      throw error;
    } finally {
      routed.inFlight--;
      if (routed.inFlight === 0) routed.release?.();
      span?.end(failure ?? (measure.finished ? undefined : asConnectError(meshError(Code.Canceled, "cancelled"))), ctx.signal.aborted);
      this.#metrics?.routed(routedOutcome(req.model, backend.backend.name, assignment, measure, ctx.signal.aborted));
      if (assignment) {
        if (!measure.finished && measure.error === undefined) measure.error = "cancelled";
        const { subject, measurements } = assignment.entry;
        const observation = requestObservation({ ...measure, endedAt: performance.now() });
        measurements.record(subject, assignment.arm, observation);
        if (assignment.shadowBackend) measurements.recordShadow(SERVED_ARM, observation);
      }
    }
  }

  async *#serve(
    routed: RoutedModel,
    backend: ReplicaSet,
    assignment: Assignment | undefined,
    req: GenerateRequest,
    ctx: HandlerContext,
    measure: Measure,
    span: RouterSpan | undefined,
  ): AsyncGenerator<GenerateResponse> {
    const sampling = req.sampling!;
    const tokenizing = span?.tokenize();
    const { tokenIds, contextLength } = await this.#tokenize(req, ctx).finally(() => tokenizing?.end());
    const maxTokens = sampling.maxTokens || Math.max(0, contextLength - tokenIds.length);
    if (tokenIds.length + maxTokens > contextLength) {
      throw meshError(
        Code.InvalidArgument,
        `This model's maximum context length is ${contextLength} tokens. However, you requested ${tokenIds.length + maxTokens} tokens ` +
          `(${tokenIds.length} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
        { reason: "context_length_exceeded", param: "messages" },
      );
    }
    measure.promptTokens = tokenIds.length;
    const rateLimit = req.admit ? await this.#admit(req, tokenIds.length + maxTokens, ctx) : undefined;
    const shardRequest = {
      requestId: req.requestId,
      model: req.model,
      promptTokenIds: tokenIds,
      messages: req.messages,
      prompt: req.prompt,
      sampling: { ...samplingWithTools(sampling, backend.backend, req), maxTokens },
      tools: req.tools,
    };
    const shadowBackend = assignment?.shadowBackend;
    if (shadowBackend) {
      const target = routed.backends.get(shadowBackend);
      const { measurements } = assignment.entry;
      if (target) this.#shadow.send(target, { ...shardRequest, requestId: `${req.requestId}:shadow` }, (o) => measurements.recordShadow(shadowBackend, o));
    }
    const experiment = assignment ? `${assignment.entry.config.name}=${assignment.arm}` : "";

    const tried = new Set<Replica>();
    let started = false;
    let lastError: ConnectError | undefined;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const replica = backend.pick(tried);
      if (!replica) break;
      if (attempt > 1) this.#metrics?.retried(req.model, backend.backend.name);
      tried.add(replica);
      replica.inFlight++;
      const tracing = span?.attempt(replica.address, attempt);
      let attemptError: ConnectError | undefined;
      try {
        const stream = replica.client.generate(shardRequest, { signal: ctx.signal, timeoutMs: ctx.timeoutMs(), headers: tracing?.headers });
        let finished = false;
        // Messages already waiting are forwarded together (a fast engine outruns a per-token relay).
        for await (const batch of coalesce(stream[Symbol.asyncIterator]()))
          for (const res of mergeDeltas(batch)) {
            if (!started) {
              started = true;
              yield create(GenerateResponseSchema, {
                event: {
                  case: "started",
                  value: {
                    promptTokens: tokenIds.length,
                    backend: backend.backend.name,
                    replica: replica.address,
                    experiment,
                    systemFingerprint: systemFingerprintOf(backend.backend),
                    rateLimit,
                  },
                },
              });
            }
            if (measure.firstTokenAt === undefined && (res.tokenIds.length > 0 || res.text)) {
              measure.firstTokenAt = performance.now();
              span?.firstToken();
            }
            if (res.finishReason !== FinishReason.UNSPECIFIED) {
              if (res.text || res.toolCalls.length > 0 || res.logprobs.length > 0) yield delta(res.text, 0, res.toolCalls, res.logprobs);
              replica.succeeded();
              measure.promptTokens = res.promptTokens;
              measure.completionTokens = res.completionTokens;
              measure.finished = true;
              span?.finished(FinishReason[res.finishReason].toLowerCase(), res.promptTokens, res.completionTokens);
              yield create(GenerateResponseSchema, {
                event: {
                  case: "finished",
                  value: { finishReason: res.finishReason, promptTokens: res.promptTokens, completionTokens: res.completionTokens, engineMs: res.engineMs },
                },
              });
              // Read the stream to its end (the OK status follows at once) rather
              // than cancelling a call that is already done.
              finished = true;
              continue;
            }
            yield delta(res.text, res.tokenCount || res.tokenIds.length, res.toolCalls, res.logprobs);
          }
        if (finished) return;
        throw meshError(Code.Unavailable, "the shard ended the stream without finishing");
      } catch (err) {
        if (ctx.signal.aborted) throw asConnectError(err);
        // The caller is still here, so a "cancelled" call means the shard went away (its server shut down).
        const error = shardFailure(err);
        attemptError = error;
        if (FAILURE_CODES.has(error.code)) replica.failed(Date.now());
        const retryable = !started && RETRYABLE_CODES.has(error.code);
        this.log.warn(
          { requestId: req.requestId, replica: replica.address, code: Code[error.code], retry: retryable && attempt < MAX_ATTEMPTS },
          "shard call failed",
        );
        if (!retryable) throw error;
        lastError = error;
      } finally {
        replica.inFlight--;
        endAttempt(tracing, attemptError);
      }
    }
    if (lastError?.code === Code.ResourceExhausted) {
      throw withRetryAfter(meshError(Code.ResourceExhausted, `backend "${backend.backend.name}" is overloaded; retry later`, { reason: "overloaded" }), 1_000);
    }
    if (lastError) throw lastError;
    throw withRetryAfter(
      meshError(Code.Unavailable, `no replica of backend "${backend.backend.name}" is available`, { reason: "no_replica_available" }),
      backend.retryAfterMs(),
    );
  }

  /**
   * Reserves one request and `tokens` (the exact prompt count plus
   * max_tokens, or the rest of the context when the request sets none)
   * against the key's limits in auth; auth's refusal (ResourceExhausted with
   * its x-ratelimit-* metadata) goes back to the edge as it is.
   */
  async #admit(req: GenerateRequest, tokens: number, ctx: HandlerContext): Promise<RateLimitStatus | undefined> {
    const auth = this.#options.auth;
    if (!auth) {
      throw meshError(Code.Unavailable, "this router cannot check rate limits (it has no auth address, MESH_AUTH_ADDR)", { reason: "admission_unavailable" });
    }
    const { status } = await auth.admit(
      { keyId: req.keyId, requestId: req.requestId, reserveTokens: tokens },
      { signal: ctx.signal, timeoutMs: Math.min(ADMIT_TIMEOUT_MS, ctx.timeoutMs() ?? ADMIT_TIMEOUT_MS) },
    );
    return status;
  }

  #chooseBackend(routed: RoutedModel, req: GenerateRequest): { backend: ReplicaSet; assignment?: Assignment } {
    if (req.forceBackend) {
      const forced = routed.backends.get(req.forceBackend);
      if (!forced) throw meshError(Code.InvalidArgument, `model "${req.model}" has no backend "${req.forceBackend}"`, { param: "x-mesh-force-backend" });
      return { backend: forced };
    }
    const assignment = this.experiments.assign(req.model, req);
    const backend = assignment ? routed.backends.get(assignment.arm) : undefined;
    if (assignment && backend) return { backend, assignment };
    return { backend: routed.backends.values().next().value! };
  }

  #tokenize(req: GenerateRequest, ctx: HandlerContext): Promise<{ tokenIds: number[]; contextLength: number }> {
    const tools = req.tools?.choice === "none" ? [] : (req.tools?.tools ?? []);
    return req.messages.length > 0
      ? this.tokenizer.encodeChat(req.model, req.messages, ctx.signal, tools)
      : this.tokenizer.encodeCompletion(req.model, req.prompt, ctx.signal);
  }
}

/** What the metrics record of one routed request. */
function routedOutcome(model: string, backend: string, assignment: Assignment | undefined, m: Measure, aborted: boolean) {
  const now = performance.now();
  const status = m.finished ? "ok" : aborted || m.error === "cancelled" ? "cancelled" : "error";
  const ttftSeconds = m.firstTokenAt === undefined ? undefined : (m.firstTokenAt - m.startedAt) / 1000;
  const tpotSeconds = m.firstTokenAt !== undefined && m.completionTokens > 1 ? (now - m.firstTokenAt) / 1000 / (m.completionTokens - 1) : undefined;
  return { model, backend, status, experiment: assignment?.entry.config.name, arm: assignment?.arm, ttftSeconds, tpotSeconds };
}

/** A shard call's failure as the router reports it: Canceled while our caller waits is the shard leaving, Unavailable. */
function shardFailure(err: unknown): ConnectError {
  const error = asConnectError(err);
  return error.code === Code.Canceled ? meshError(Code.Unavailable, "the shard went away during the generation", { cause: err }) : error;
}

function delta(text: string, tokenCount: number, toolCalls: ToolCallDelta[] = [], logprobs: TokenLogprob[] = []): GenerateResponse {
  return create(GenerateResponseSchema, { event: { case: "delta", value: { text, tokenCount, toolCalls, logprobs } } });
}
