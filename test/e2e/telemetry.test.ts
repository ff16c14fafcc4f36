import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { startOtlpReceiver } from "../support/otlp-receiver.js";
import type { ReceivedSpan } from "../support/otlp-receiver.js";
import { until } from "../support/until.js";

const run = promisify(execFile);
const MODEL = "tiny-llama";
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

/** A client-side trace context, as an instrumented caller would send it. */
function clientTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

describe("traces across every hop (OTLP/HTTP JSON to a real receiver)", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-otel-"));
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let mesh: MeshProcess;
  const client = (apiKey: string) => new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey, maxRetries: 0 });
  const cli = async (...args: string[]): Promise<string> =>
    (await run(process.execPath, ["bin/llm-mesh.js", ...args, "--url", mesh.url, "--data-dir", dataDir], { env: { ...process.env, MESH_ADMIN_TOKEN: "" } }))
      .stdout;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    mesh = await startMeshProcess({
      dataDir,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "50",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true",
        LOG_LEVEL: "info",
      },
    });
  });

  afterAll(async () => {
    if (mesh && mesh.child.exitCode === null) await mesh.stop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("exports one trace per request from edge, router and shard, parented on the client's traceparent, with the GenAI attributes", async () => {
    const parent = clientTraceparent();
    const { data, response } = await client(TEST_API_KEY)
      .chat.completions.create(
        { model: MODEL, messages: [{ role: "user", content: "a traced question" }], max_tokens: 5, temperature: 0 },
        { headers: { traceparent: parent.header } },
      )
      .withResponse();
    const requestId = response.headers.get("x-request-id")!;
    let spans: ReceivedSpan[] = [];
    // edge, router, tokenize, the shard attempt and the shard.
    await until(() => (spans = receiver.trace(parent.traceId)).length >= 5, 15_000, 50);
    expect(receiver.contentTypes).toEqual(new Set(["application/json"]));

    const edge = spans.find((s) => s.service === "llm-mesh-edge")!;
    const router = spans.find((s) => s.service === "llm-mesh-router" && s.kind === SPAN_KIND_SERVER)!;
    const attempt = spans.find((s) => s.service === "llm-mesh-router" && s.kind === SPAN_KIND_CLIENT)!;
    const tokenize = spans.find((s) => s.service === "llm-mesh-router" && s.name === "tokenize")!;
    const shard = spans.find((s) => s.service === "llm-mesh-model-shard")!;
    for (const span of [edge, router, attempt, tokenize, shard]) expect(span).toBeDefined();

    // Parent and child links: client → edge → router → (tokenize, attempt → shard).
    expect(edge.parentSpanId).toBe(parent.spanId);
    expect(edge.kind).toBe(SPAN_KIND_SERVER);
    expect(router.parentSpanId).toBe(edge.spanId);
    expect(tokenize.parentSpanId).toBe(router.spanId);
    expect(attempt.parentSpanId).toBe(router.spanId);
    expect(shard.parentSpanId).toBe(attempt.spanId);

    for (const span of [edge, router, attempt, shard]) expect(span.name).toBe(`chat ${MODEL}`);
    expect(edge.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": MODEL,
      "gen_ai.request.max_tokens": 5,
      "gen_ai.request.temperature": 0,
      "gen_ai.response.model": MODEL,
      "gen_ai.response.id": data.id,
      "gen_ai.response.finish_reasons": [data.choices[0].finish_reason],
      "gen_ai.usage.input_tokens": data.usage!.prompt_tokens,
      "gen_ai.usage.output_tokens": data.usage!.completion_tokens,
      "mesh.backend": "local",
      "mesh.request_id": requestId,
    });
    expect(data.id).toBe(`chatcmpl-${requestId}`);
    expect(edge.events).toContain("gen_ai.first_token");
    expect(router.attributes).toMatchObject({
      "gen_ai.request.model": MODEL,
      "mesh.backend": "local",
      "gen_ai.usage.output_tokens": data.usage!.completion_tokens,
    });
    expect(router.events).toContain("gen_ai.first_token");
    expect(attempt.attributes).toMatchObject({ "mesh.attempt": 1, "mesh.retry": false });
    expect(String(attempt.attributes["mesh.replica"])).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(shard.attributes).toMatchObject({ "mesh.engine": "llama.cpp", "gen_ai.usage.input_tokens": data.usage!.prompt_tokens });
    expect(shard.events).toEqual(expect.arrayContaining(["mesh.slot_acquired", "gen_ai.first_token"]));

    // Content capture is on and the default account retains: content on the edge span only.
    expect(String(edge.attributes["gen_ai.input.messages"])).toContain("a traced question");
    expect(JSON.parse(String(edge.attributes["gen_ai.output.messages"]))[0]).toMatchObject({ role: "assistant", finish_reason: data.choices[0].finish_reason });
    for (const span of [router, attempt, shard]) expect(span.attributes["gen_ai.input.messages"]).toBeUndefined();
  });

  it("starts a new trace when the client sends none, and an edge span per streamed request", async () => {
    const stream = await client(TEST_API_KEY).chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stream me" }],
      max_tokens: 4,
      stream: true,
    });
    for await (const _ of stream) void _;
    let edge: ReceivedSpan | undefined;
    await until(
      () =>
        (edge = receiver.spans.find(
          (s) => s.service === "llm-mesh-edge" && String((s.attributes["gen_ai.input.messages"] as string | undefined) ?? "").includes("stream me"),
        )) !== undefined,
      15_000,
      50,
    );
    expect(edge!.parentSpanId).toBe("");
    await until(() => receiver.trace(edge!.traceId).some((s) => s.service === "llm-mesh-model-shard"), 15_000, 50);
  });

  it("never puts content of an account that opted out of retention on a span", async () => {
    expect(await cli("accounts", "create", "private")).toContain("private");
    expect(await cli("accounts", "set", "private", "--retention", "off")).toContain("retention off");
    const key = (JSON.parse(await cli("keys", "create", "--json", "--account", "private")) as { key: string }).key;
    const parent = clientTraceparent();
    await client(key).chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: "a private question" }], max_tokens: 4 },
      { headers: { traceparent: parent.header } },
    );
    let spans: ReceivedSpan[] = [];
    // The edge's span ends last: wait for it, not just for the shard's.
    await until(() => (spans = receiver.trace(parent.traceId)).some((s) => s.service === "llm-mesh-edge"), 15_000, 50);
    const edge = spans.find((s) => s.service === "llm-mesh-edge")!;
    expect(edge.attributes["gen_ai.usage.output_tokens"]).toBeGreaterThan(0);
    expect(edge.attributes["gen_ai.input.messages"]).toBeUndefined();
    expect(edge.attributes["gen_ai.output.messages"]).toBeUndefined();
    expect(receiver.bodies.join("\n")).not.toContain("a private question");
  });

  it("serves the GenAI metrics and the mesh overhead at the edge's /metrics", async () => {
    const text = await (await fetch(`${mesh.url}/metrics`)).text();
    expect(text).toMatch(
      new RegExp(`^gen_ai_server_request_duration_seconds_count\\{gen_ai_operation_name="chat",gen_ai_request_model="${MODEL}",error_type=""\\} [1-9]`, "m"),
    );
    expect(text).toMatch(/^gen_ai_server_time_to_first_token_seconds_bucket\{le="0.001",/m);
    expect(text).toMatch(/^gen_ai_server_time_per_output_token_seconds_count\{/m);
    expect(text).toMatch(
      new RegExp(`^gen_ai_client_token_usage_sum\\{gen_ai_operation_name="chat",gen_ai_request_model="${MODEL}",gen_ai_token_type="output"\\} [1-9]`, "m"),
    );
    expect(text).toMatch(new RegExp(`^mesh_generation_requests_total\\{model="${MODEL}",status="ok"\\} [1-9]`, "m"));
    expect(text).toMatch(new RegExp(`^mesh_overhead_seconds_count\\{model="${MODEL}"\\} [1-9]`, "m"));
    expect(text).not.toContain("sk-");
  });

  it("prints one access line per request with model, backend, tokens, request and trace id, as JSON when piped", () => {
    const lines = mesh
      .output()
      .split("\n")
      .filter((l) => l.startsWith("[edge] ") || l.startsWith("[core] "))
      .map((l) => l.slice(l.indexOf("] ") + 2))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.access === true && l.path === "/v1/chat/completions");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines[0]).toMatchObject({ msg: "request", method: "POST", status: 200, model: MODEL, backend: "local" });
    expect(lines[0].traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[0].completionTokens).toBeGreaterThan(0);
    expect(mesh.output()).not.toContain(TEST_API_KEY);
  });
});
