import { z } from "zod";
import { PROMPT_FORMATS } from "../templates/index.js";
import { TOOL_PARSERS } from "../tool-calls/parsers.js";

/** Settings of a backend run in process by llama.cpp (node-llama-cpp). */
export const llamaCppBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("llama.cpp"),
  /** Path to the GGUF file. */
  model: z.string().min(1),
  /**
   * What runs the model: "node-llama-cpp" (in the shard's own process, the
   * default) or "llama-server" (llama.cpp's own server as a child process of
   * the shard, the same llama.cpp release; about twice as fast per token on
   * a CPU, without embeddings; `llm-mesh llama-server build`
   * makes the binary, or LLAMA_SERVER_BIN names one: docs/models.md).
   */
  runtime: z.enum(["node-llama-cpp", "llama-server"]).default("node-llama-cpp"),
  replicas: z.number().int().min(1).max(64).default(1),
  /** Parallel sequences per context (continuous batching slots). */
  sequences: z.number().int().min(1).max(256).default(4),
  /** Context size in tokens shared by all sequences; default: sequences × the model's context, capped. */
  context_size: z.number().int().min(64).optional(),
  /** Evaluation threads; default: measured at start, never slower than one (see model-shard llama-threads.ts); on llama-server, the cores less one. */
  threads: z.number().int().min(1).max(512).optional(),
  /**
   * llama-server runtime only (`-tb`): threads for a batch of several tokens (a prompt, or the
   * running sequences' next tokens together); default: every core for a model at least 256 wide,
   * else `threads` (lib/llama-server defaultBatchThreads). A batch keeps each thread busy between
   * llama.cpp's barriers where one token does not (docs/models.md). The in-process
   * runtime uses `threads` for both (node-llama-cpp has no separate setting).
   */
  threads_batch: z.number().int().min(1).max(512).optional(),
  /** "auto" uses CUDA/Vulkan/Metal where present, false forces CPU. */
  gpu: z.union([z.literal("auto"), z.literal(false), z.enum(["cuda", "vulkan", "metal"])]).default("auto"),
  /**
   * How each decode batch is ordered: "sequence" (by sequence id, so llama.cpp
   * evaluates the running sequences in one pass) or "arrival" (node-llama-cpp's default).
   * node-llama-cpp only: llama-server batches its slots itself.
   */
  batch_order: z.enum(["sequence", "arrival"]).default("sequence"),
  /** Bounded wait queue in front of the sequences. */
  max_queue: z.number().int().min(0).default(64),
  /** Filled in by the launcher: one address per replica. */
  addresses: z.array(z.string()).optional(),
});

/** Settings of a backend that forwards to an OpenAI-compatible server. */
export const upstreamBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("openai-upstream"),
  /** Base URL of the OpenAI-compatible API, ending in /v1 as a client's baseURL does. */
  url: z.string().url(),
  /** Bearer key for the upstream; prefer `api_key_env` so the key stays out of the file. */
  api_key: z.string().optional(),
  /** Name of the environment variable holding the upstream key (read by the shard). */
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")
    .optional(),
  /** The model name the upstream knows; default: the catalog name. */
  upstream_model: z.string().optional(),
  /** Whole-request limit; past it the call fails with DeadlineExceeded. */
  timeout_ms: z.number().int().positive().default(600_000),
  /** The upstream's context length, if known (the tokenizer's is used for checks). */
  context_length: z.number().int().positive().optional(),
  replicas: z.number().int().min(1).max(64).default(1),
  max_concurrency: z.number().int().min(1).default(256),
  max_queue: z.number().int().min(0).default(1024),
  addresses: z.array(z.string()).optional(),
});

/**
 * The load-test simulator: never a default, for benchmarks only. Its
 * latency model: prefill takes prompt tokens / `prefill_tokens_per_s`; each
 * decode step takes `decode_ms_per_token` + `decode_ms_per_extra_sequence`
 * × (running sequences − 1); at most `max_batch` sequences run, the rest wait
 * in a queue of `max_queue`.
 */
export const simBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("sim"),
  replicas: z.number().int().min(1).max(64).default(1),
  prefill_tokens_per_s: z.number().positive().default(5_000),
  decode_ms_per_token: z.number().min(0).default(20),
  /** Extra decode time per running sequence beyond the first. */
  decode_ms_per_extra_sequence: z.number().min(0).default(0.5),
  max_batch: z.number().int().min(1).default(32),
  /** The simulated model's context length. */
  context_length: z.number().int().positive().default(32_768),
  /** Ends with "stop" after this many tokens unless ignore_eos; default: runs to max_tokens. */
  eos_after_tokens: z.number().int().min(1).optional(),
  max_queue: z.number().int().min(0).default(1024),
  addresses: z.array(z.string()).optional(),
});

export const backendSchema = z.discriminatedUnion("engine", [llamaCppBackendSchema, upstreamBackendSchema, simBackendSchema]);

export const modelSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, "letters, digits and . _ : / - only"),
    /** A named prompt format (see lib/templates); default: the tokenizer file's own template. */
    template: z
      .string()
      .refine((name) => PROMPT_FORMATS.has(name), {
        error: (issue) => `unknown template "${String(issue.input)}" (known: ${[...PROMPT_FORMATS.keys()].join(", ")})`,
      })
      .optional(),
    context_length: z.number().int().positive().optional(),
    /** Where token ids come from: a GGUF (vocabulary only) or a tokenizer.json. */
    tokenizer: z
      .string()
      .refine((file) => /\.(gguf|json)$/i.test(file), "a .gguf file or a tokenizer.json")
      .optional(),
    /** Completion-only models refuse chat requests. */
    completion_only: z.boolean().default(false),
    /**
     * How `tool_choice: "auto"` output of an in-process model is read for tool
     * calls: hermes `<tool_call>`, mistral `[TOOL_CALLS]`, llama3_json, or json;
     * default hermes (the syntax of the default tool prompt).
     */
    tool_parser: z.enum(TOOL_PARSERS).optional(),
    /** false: /v1/embeddings refuses the model; unset or true: its backend embeds (llama.cpp's embedding context, an upstream's /embeddings). */
    embeddings: z.boolean().optional(),
    backends: z.array(backendSchema).min(1),
  })
  .superRefine((model, ctx) => {
    // Usage and context checks count tokens in the mesh: every real model needs a tokenizer.
    const hasGguf = model.backends.some((b) => b.engine === "llama.cpp");
    const simOnly = model.backends.every((b) => b.engine === "sim");
    if (!model.tokenizer && !hasGguf && !simOnly) {
      ctx.addIssue({
        code: "custom",
        path: ["tokenizer"],
        message: "required when no backend is llama.cpp: the tokenizer.json (or GGUF) the upstream model uses",
      });
    }
  });

/** An A/B experiment: one model served by weighted arms (backends), optional shadow traffic. */
export const experimentSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "letters, digits and . _ - only (at most 64)"),
  model: z.string().min(1),
  /** "user": the OpenAI `user` field, else the key id; "key": always the key id. */
  unit: z.enum(["user", "key"]).default("user"),
  /** Changing the salt reshuffles every unit; default: the name. */
  salt: z.string().min(1).optional(),
  arms: z.array(z.object({ backend: z.string().min(1), weight: z.number().finite().min(0) })).min(1),
  shadow: z.object({ backend: z.string().min(1), percent: z.number().min(0).max(100) }).optional(),
  /** The metric the verdict is about (default ttft_ms). */
  primary_metric: z.string().min(1).optional(),
});

/** Problems of an experiment against the models it names (empty when it is sound). */
export function experimentProblems(models: readonly CatalogModel[], experiment: z.infer<typeof experimentSchema>): string[] {
  const model = models.find((m) => m.name === experiment.model);
  if (!model) return [`experiment "${experiment.name}": unknown model "${experiment.model}"`];
  const backends = new Set(model.backends.map((b) => b.name));
  const problems: string[] = [];
  const arms = new Set<string>();
  for (const arm of experiment.arms) {
    if (!backends.has(arm.backend)) problems.push(`experiment "${experiment.name}": model "${model.name}" has no backend "${arm.backend}"`);
    if (arms.has(arm.backend)) problems.push(`experiment "${experiment.name}": backend "${arm.backend}" is listed twice`);
    arms.add(arm.backend);
  }
  if (!experiment.arms.some((a) => a.weight > 0)) problems.push(`experiment "${experiment.name}": no arm has a positive weight`);
  const shadow = experiment.shadow?.backend;
  if (shadow !== undefined && !backends.has(shadow)) problems.push(`experiment "${experiment.name}": model "${model.name}" has no shadow backend "${shadow}"`);
  if (shadow !== undefined && arms.has(shadow)) problems.push(`experiment "${experiment.name}": shadow backend "${shadow}" is also an arm`);
  return problems;
}

export const catalogSchema = z
  .object({ models: z.array(modelSchema).min(1), experiments: z.array(experimentSchema).optional() })
  .superRefine((catalog, ctx) => {
    const experimentNames = new Set<string>();
    const experimentModels = new Set<string>();
    (catalog.experiments ?? []).forEach((experiment, i) => {
      for (const message of experimentProblems(catalog.models, experiment)) ctx.addIssue({ code: "custom", path: ["experiments", i], message });
      if (experimentNames.has(experiment.name))
        ctx.addIssue({ code: "custom", path: ["experiments", i, "name"], message: `duplicate experiment "${experiment.name}"` });
      if (experimentModels.has(experiment.model))
        ctx.addIssue({ code: "custom", path: ["experiments", i, "model"], message: `model "${experiment.model}" is already in an experiment` });
      experimentNames.add(experiment.name);
      experimentModels.add(experiment.model);
    });
    const seen = new Set<string>();
    catalog.models.forEach((model, i) => {
      if (seen.has(model.name)) ctx.addIssue({ code: "custom", path: ["models", i, "name"], message: `duplicate model "${model.name}"` });
      seen.add(model.name);
      const backends = new Set<string>();
      model.backends.forEach((backend, j) => {
        if (backends.has(backend.name))
          ctx.addIssue({ code: "custom", path: ["models", i, "backends", j, "name"], message: `duplicate backend "${backend.name}"` });
        backends.add(backend.name);
      });
    });
  });

export type Catalog = z.infer<typeof catalogSchema>;
export type CatalogModel = z.infer<typeof modelSchema>;
export type CatalogBackend = z.infer<typeof backendSchema>;
export type LlamaCppBackend = z.infer<typeof llamaCppBackendSchema>;
export type UpstreamBackend = z.infer<typeof upstreamBackendSchema>;
export type SimBackend = z.infer<typeof simBackendSchema>;
export type CatalogExperiment = z.infer<typeof experimentSchema>;

/** What a simulator's responses carry in `system_fingerprint`: it says what it is. */
export const SIM_SYSTEM_FINGERPRINT = "mesh-sim-simulator-not-a-model";

/** The `system_fingerprint` responses of a backend carry ("" = the edge's default). */
export function systemFingerprintOf(backend: CatalogBackend): string {
  return backend.engine === "sim" ? SIM_SYSTEM_FINGERPRINT : "";
}

/** The file a model's tokenizer reads: its own `tokenizer`, else the first GGUF backend's model. */
export function tokenizerSource(model: CatalogModel): string | undefined {
  if (model.tokenizer) return model.tokenizer;
  for (const backend of model.backends) if (backend.engine === "llama.cpp") return backend.model;
  return undefined;
}
