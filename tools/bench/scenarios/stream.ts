/**
 * `stream`: streamed tokens per second through the edge with a zero-delay
 * engine at several concurrent-stream counts, beside the engine called
 * directly (the ceiling this client and machine allow).
 */
import { runLoad } from "../load-generator.js";
import { aggregate } from "../metrics.js";
import type { RunMetrics } from "../metrics.js";
import { closeClientSockets, sendChat } from "../openai-client.js";
import { progressBar } from "../progress.js";
import { num, ratio, table } from "../report.js";
import type { BenchReport } from "../report.js";
import { lineChart } from "../../../lib/svg/index.js";
import { startStack } from "./stack.js";

/** Options of the stream scenario. */
export interface StreamOptions {
  concurrencies: number[];
  /** Streams per concurrent client. */
  rounds: number;
  tokensPerStream: number;
  progress: boolean;
}

/** One target at one concurrency. */
export interface StreamCell {
  target: string;
  concurrency: number;
  metrics: RunMetrics;
}

/** Goal for streamed tokens/s through the edge. */
export const STREAM_GOAL_TOKENS_PER_S = 50_000;

/** Runs every cell and returns the report. */
export async function runStream(o: StreamOptions, log: (line: string) => void): Promise<BenchReport> {
  const stack = await startStack(o.tokensPerStream, false, log);
  const cells: StreamCell[] = [];
  try {
    for (const concurrency of o.concurrencies) {
      for (const { name, target } of stack.targets) {
        const job = { prompt: "Stream as many tokens as you can.", maxTokens: o.tokensPerStream, stream: true, ignoreEos: true };
        const send = (_i: number, t0: number) => sendChat(target, job, t0, 60_000);
        await runLoad(concurrency, { kind: "concurrency", clients: concurrency }, send);
        const n = concurrency * o.rounds;
        const run = await runLoad(n, { kind: "concurrency", clients: concurrency }, send, progressBar(`${name} c=${concurrency}`, n, o.progress));
        const metrics = aggregate(run.results, run.durationS);
        if (metrics.failed) log(`  ${name} c=${concurrency}: ${metrics.failed} failed (${metrics.errors.join("; ").slice(0, 300)})`);
        cells.push({ target: name, concurrency, metrics });
        closeClientSockets();
      }
    }
  } finally {
    await stack.stop();
  }
  const rows = cells.map((c) => {
    const d = cells.find((x) => x.target === "direct" && x.concurrency === c.concurrency);
    return [
      c.target,
      String(c.concurrency),
      `${c.metrics.completed}/${c.metrics.failed}`,
      c.metrics.outputThroughput,
      c.metrics.ttftMs.p50,
      c.metrics.itlMs.p50,
      c.metrics.itlMs.p99,
      c.target === "direct" ? "–" : ratio(d?.metrics.outputThroughput ?? NaN, c.metrics.outputThroughput),
    ];
  });
  const best = Math.max(0, ...cells.filter((c) => c.target === "mesh").map((c) => c.metrics.outputThroughput));
  const markdown = [
    `${o.tokensPerStream} tokens per stream, ${o.rounds} streams per concurrent client, fake engine with no delay.`,
    "",
    ...stack.failed.map((f) => `**${f.name} did not start**: ${f.error.split("\n")[0]}\n`),
    table(["system", "streams", "ok/fail", "tokens/s", "TTFT p50 ms", "ITL p50 ms", "ITL p99 ms", "share of direct"], rows),
    "",
    `Best through the mesh: ${num(best)} tokens/s (goal ≥ ${num(STREAM_GOAL_TOKENS_PER_S)}): ${best >= STREAM_GOAL_TOKENS_PER_S ? "met" : "not met"}.`,
    "",
  ].join("\n");
  const targets = [...new Set(cells.map((c) => c.target))];
  const plot = lineChart("Streamed tokens/s against concurrent streams", "concurrent streams", "tokens/s", [
    ...targets.map((t) => ({ name: t, points: cells.filter((c) => c.target === t).map((c): [number, number] => [c.concurrency, c.metrics.outputThroughput]) })),
    {
      name: "goal",
      dashed: true,
      points: [
        [0, STREAM_GOAL_TOKENS_PER_S],
        [Math.max(...o.concurrencies), STREAM_GOAL_TOKENS_PER_S],
      ] as Array<[number, number]>,
    },
  ]);
  return { scenario: "stream", data: { settings: o, startFailures: stack.failed, cells }, markdown, plots: { "tokens-per-second": plot } };
}
