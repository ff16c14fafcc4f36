import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";

/** Bucket boundaries the GenAI semantic conventions give for each metric (seconds, or tokens). */
export const GEN_AI_BUCKETS = {
  requestDurationSeconds: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
  timeToFirstTokenSeconds: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
  timePerOutputTokenSeconds: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5],
  tokenUsage: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
} as const;

/** The mesh's own time per request: from 0.1 ms (in process) up to a second. */
const OVERHEAD_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** One generation as the metrics see it (only catalog model names and fixed words as labels). */
export interface GenerationSample {
  operation: string;
  model: string;
  /** "ok", "error", "cancelled". */
  status: string;
  /** The gRPC code name of a failure (bounded). */
  errorType?: string;
  inputTokens: number;
  outputTokens: number;
  e2eSeconds: number;
  ttftSeconds?: number;
  /** End to end minus engine time (the `mesh` figure of `server-timing`). */
  overheadSeconds?: number;
}

/**
 * The edge's GenAI metrics in Prometheus form: `gen_ai_server_request_duration_seconds`,
 * `gen_ai_server_time_to_first_token_seconds`, `gen_ai_server_time_per_output_token_seconds`,
 * `gen_ai_client_token_usage` (by `gen_ai_token_type`), `mesh_generation_requests_total`
 * by model and status, and `mesh_overhead_seconds`. The model label is the
 * catalog name the router accepted (requests for unknown models never
 * reach here), so label sets stay bounded.
 */
export class GenAiMetrics {
  readonly #duration: Histogram<"gen_ai_operation_name" | "gen_ai_request_model" | "error_type">;
  readonly #ttft: Histogram<"gen_ai_operation_name" | "gen_ai_request_model">;
  readonly #tpot: Histogram<"gen_ai_operation_name" | "gen_ai_request_model">;
  readonly #tokens: Histogram<"gen_ai_operation_name" | "gen_ai_request_model" | "gen_ai_token_type">;
  readonly #requests: Counter<"model" | "status">;
  readonly #overhead: Histogram<"model">;

  constructor(registry: Registry) {
    const registers = [registry];
    const genAi = ["gen_ai_operation_name", "gen_ai_request_model"] as const;
    this.#duration = new Histogram({
      name: "gen_ai_server_request_duration_seconds",
      help: "GenAI server request duration (gen_ai.server.request.duration), seconds.",
      labelNames: [...genAi, "error_type"],
      buckets: [...GEN_AI_BUCKETS.requestDurationSeconds],
      registers,
    });
    this.#ttft = new Histogram({
      name: "gen_ai_server_time_to_first_token_seconds",
      help: "Time to the first output token (gen_ai.server.time_to_first_token), seconds.",
      labelNames: genAi,
      buckets: [...GEN_AI_BUCKETS.timeToFirstTokenSeconds],
      registers,
    });
    this.#tpot = new Histogram({
      name: "gen_ai_server_time_per_output_token_seconds",
      help: "Time per output token after the first (gen_ai.server.time_per_output_token), seconds.",
      labelNames: genAi,
      buckets: [...GEN_AI_BUCKETS.timePerOutputTokenSeconds],
      registers,
    });
    this.#tokens = new Histogram({
      name: "gen_ai_client_token_usage",
      help: "Tokens per request by type, input or output (gen_ai.client.token.usage).",
      labelNames: [...genAi, "gen_ai_token_type"],
      buckets: [...GEN_AI_BUCKETS.tokenUsage],
      registers,
    });
    this.#requests = new Counter({
      name: "mesh_generation_requests_total",
      help: "Generations that reached a model, by model and status.",
      labelNames: ["model", "status"],
      registers,
    });
    this.#overhead = new Histogram({
      name: "mesh_overhead_seconds",
      help: "Time a request spent in the mesh, not the engine (end to end minus engine time; server-timing's mesh figure), seconds.",
      labelNames: ["model"],
      buckets: OVERHEAD_BUCKETS_SECONDS,
      registers,
    });
  }

  record(s: GenerationSample): void {
    const labels = { gen_ai_operation_name: s.operation, gen_ai_request_model: s.model };
    this.#requests.inc({ model: s.model, status: s.status });
    this.#duration.observe({ ...labels, error_type: s.errorType ?? "" }, s.e2eSeconds);
    if (s.status !== "ok") return;
    this.#tokens.observe({ ...labels, gen_ai_token_type: "input" }, s.inputTokens);
    this.#tokens.observe({ ...labels, gen_ai_token_type: "output" }, s.outputTokens);
    if (s.ttftSeconds !== undefined) {
      this.#ttft.observe(labels, s.ttftSeconds);
      if (s.outputTokens > 1) this.#tpot.observe(labels, (s.e2eSeconds - s.ttftSeconds) / (s.outputTokens - 1));
    }
    if (s.overheadSeconds !== undefined) this.#overhead.observe({ model: s.model }, s.overheadSeconds);
  }
}
