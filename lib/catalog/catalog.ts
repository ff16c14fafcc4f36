import { z } from "zod";

/** Settings of a backend run in process by llama.cpp (node-llama-cpp). */
export const llamaCppBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("llama.cpp"),
  /** Path to the GGUF file. */
  model: z.string().min(1),
  replicas: z.number().int().min(1).max(64).default(1),
  /** Parallel sequences per context (continuous batching slots). */
  sequences: z.number().int().min(1).max(256).default(4),
  /** Context size in tokens shared by all sequences; default: sequences × the model's context, capped. */
  context_size: z.number().int().min(64).optional(),
  /** Evaluation threads; default: the cores available. */
  threads: z.number().int().min(1).max(512).optional(),
  /** "auto" uses CUDA/Vulkan/Metal where present, false forces CPU. */
  gpu: z.union([z.literal("auto"), z.literal(false), z.enum(["cuda", "vulkan", "metal"])]).default("auto"),
  /** Bounded wait queue in front of the sequences. */
  max_queue: z.number().int().min(0).default(64),
  /** Filled in by the launcher: one address per replica. */
  addresses: z.array(z.string()).optional(),
});

/** Settings of a backend that forwards to an OpenAI-compatible server. */
export const upstreamBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("openai-upstream"),
  url: z.string().url(),
  api_key: z.string().optional(),
  upstream_model: z.string().optional(),
  timeout_ms: z.number().int().positive().default(600_000),
  replicas: z.number().int().min(1).max(64).default(1),
  max_concurrency: z.number().int().min(1).default(256),
  max_queue: z.number().int().min(0).default(1024),
  addresses: z.array(z.string()).optional(),
});

/** The load-test simulator: never a default, for benchmarks only. */
export const simBackendSchema = z.object({
  name: z.string().min(1),
  engine: z.literal("sim"),
  replicas: z.number().int().min(1).max(64).default(1),
  prefill_tokens_per_s: z.number().positive().default(5_000),
  decode_ms_per_token: z.number().min(0).default(20),
  /** Extra decode time per running sequence beyond the first. */
  decode_ms_per_extra_sequence: z.number().min(0).default(0.5),
  max_batch: z.number().int().min(1).default(32),
  max_queue: z.number().int().min(0).default(1024),
  addresses: z.array(z.string()).optional(),
});

export const backendSchema = z.discriminatedUnion("engine", [
  llamaCppBackendSchema,
  upstreamBackendSchema,
  simBackendSchema,
]);

export const modelSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, "letters, digits and . _ : / - only"),
  /** A named prompt format (see lib/templates); default: the GGUF's own template. */
  template: z.string().optional(),
  context_length: z.number().int().positive().optional(),
  /** Where token ids come from: a GGUF (vocabulary only) or a tokenizer.json. */
  tokenizer: z.string().optional(),
  /** Completion-only models refuse chat requests. */
  completion_only: z.boolean().default(false),
  backends: z.array(backendSchema).min(1),
});

export const catalogSchema = z
  .object({ models: z.array(modelSchema).min(1) })
  .superRefine((catalog, ctx) => {
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

/** The file a model's tokenizer reads: its own `tokenizer`, else the first GGUF backend's model. */
export function tokenizerSource(model: CatalogModel): string | undefined {
  if (model.tokenizer) return model.tokenizer;
  for (const backend of model.backends) if (backend.engine === "llama.cpp") return backend.model;
  return undefined;
}
