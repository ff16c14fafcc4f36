/**
 * `overhead`: what a hop costs. The same zero-delay fake engine is called
 * directly, through the mesh (openai-upstream backend) and through Portkey's
 * gateway, in one run; TTFT and e2e p50/p99 at each concurrency, stream and
 * non-stream, and each system's overhead over direct.
 */
import { runLoad } from "../load-generator.js";
import { aggregate } from "../metrics.js";
import type { RunMetrics } from "../metrics.js";
import { closeClientSockets, sendChat } from "../openai-client.js";
import type { ChatJob } from "../openai-client.js";
import { progressBar } from "../progress.js";
import { num, table } from "../report.js";
import type { BenchReport } from "../report.js";
import { barChart } from "../svg-plot.js";
import { startStack } from "./stack.js";

/** Options of the overhead scenario. */
export interface OverheadOptions {
  requests: number;
  warmup: number;
  concurrencies: number[];
  outputTokens: number;
  portkey: boolean;
  progress: boolean;
}

/** One cell: a system, a mode, a concurrency. */
export interface OverheadCell {
  target: string;
  stream: boolean;
  concurrency: number;
  metrics: RunMetrics;
}

const PROMPT = "Measure the overhead of every hop between a client and its engine.";

/** Runs every cell and returns the report. */
export async function runOverhead(o: OverheadOptions, log: (line: string) => void): Promise<BenchReport> {
  const stack = await startStack(o.outputTokens, o.portkey, log);
  const cells: OverheadCell[] = [];
  try {
    for (const stream of [true, false]) {
      for (const concurrency of o.concurrencies) {
        for (const { name, target } of stack.targets) {
          const job: ChatJob = { prompt: PROMPT, maxTokens: o.outputTokens, stream, ignoreEos: true };
          const send = (_i: number, t0: number) => sendChat(target, job, t0, 30_000);
          await runLoad(o.warmup, { kind: "concurrency", clients: concurrency }, send);
          const run = await runLoad(o.requests, { kind: "concurrency", clients: concurrency }, send, progressBar(`${name} ${stream ? "stream" : "non-stream"} c=${concurrency}`, o.requests, o.progress));
          const metrics = aggregate(run.results, run.durationS);
          if (metrics.failed) log(`  ${name} ${stream ? "stream" : "non-stream"} c=${concurrency}: ${metrics.failed} failed (${metrics.errors.join("; ").slice(0, 300)})`);
          cells.push({ target: name, stream, concurrency, metrics });
          closeClientSockets();
        }
      }
    }
  } finally {
    await stack.stop();
  }
  return { scenario: "overhead", data: { settings: o, startFailures: stack.failed, cells }, markdown: overheadMarkdown(cells, stack.failed, o), plots: overheadPlots(cells, o) };
}

function find(cells: OverheadCell[], target: string, stream: boolean, c: number): OverheadCell | undefined {
  return cells.find((x) => x.target === target && x.stream === stream && x.concurrency === c);
}

/** Latency of a cell: TTFT for streams, e2e otherwise. */
function usable(cell: OverheadCell | undefined): cell is OverheadCell {
  return !!cell && cell.metrics.completed > 0;
}

function overheadMarkdown(cells: OverheadCell[], failed: Array<{ name: string; error: string }>, o: OverheadOptions): string {
  const parts: string[] = [`${o.requests} requests per cell after ${o.warmup} warm-up, ${o.outputTokens} output tokens each, fake engine with no delay.`, ""];
  for (const f of failed) parts.push(`**${f.name} did not start**: ${f.error.split("\n")[0]}`, "");
  parts.push(
    table(
      ["system", "mode", "conc.", "ok/fail", "req/s", "TTFT p50", "TTFT p99", "e2e p50", "e2e p99", "TTFT overhead p50/p99", "e2e overhead p50/p99"],
      cells.map((c) => {
        const d = find(cells, "direct", c.stream, c.concurrency);
        const m = c.metrics;
        const over = (pick: (m: RunMetrics) => number) => (usable(d) && c.metrics.completed > 0 ? num(pick(m) - pick(d.metrics)) : "–");
        const ok = m.completed > 0;
        return [
          c.target,
          c.stream ? "stream" : "non-stream",
          String(c.concurrency),
          `${m.completed}/${m.failed}`,
          ok ? m.requestThroughput : NaN,
          c.stream && ok ? m.ttftMs.p50 : NaN,
          c.stream && ok ? m.ttftMs.p99 : NaN,
          ok ? m.e2eMs.p50 : NaN,
          ok ? m.e2eMs.p99 : NaN,
          c.stream && c.target !== "direct" ? `${over((x) => x.ttftMs.p50)} / ${over((x) => x.ttftMs.p99)}` : "–",
          c.target !== "direct" ? `${over((x) => x.e2eMs.p50)} / ${over((x) => x.e2eMs.p99)}` : "–",
        ];
      }),
    ),
    "",
    "All times in ms. Overhead = the system's percentile minus direct's at the same mode and concurrency.",
    "",
  );
  const errs = cells.filter((c) => c.metrics.failed > 0).map((c) => `- ${c.target} ${c.stream ? "stream" : "non-stream"} c=${c.concurrency}: ${c.metrics.failed} failed: ${c.metrics.errors.join("; ").slice(0, 300)}`);
  if (errs.length) parts.push("Failures:", "", ...errs, "");
  parts.push("Goals:", "", ...goals(cells, o));
  return parts.join("\n");
}

function goals(cells: OverheadCell[], o: OverheadOptions): string[] {
  const out: string[] = [];
  const c1 = Math.min(...o.concurrencies);
  const d = find(cells, "direct", true, c1);
  const mesh = find(cells, "mesh", true, c1);
  const pk = find(cells, "portkey", true, c1);
  if (usable(d) && usable(mesh)) {
    const over = mesh.metrics.ttftMs.p50 - d.metrics.ttftMs.p50;
    out.push(`- mesh TTFT overhead p50 at ${c1} stream: ${num(over)} ms (goal < 1 ms): ${over < 1 ? "met" : "not met"}`);
    if (usable(pk)) {
      const pover = pk.metrics.ttftMs.p50 - d.metrics.ttftMs.p50;
      out.push(`- portkey TTFT overhead p50: ${num(pover)} ms; mesh under half of it: ${over < pover / 2 ? "met" : "not met"}`);
    } else {
      const dn = find(cells, "direct", false, c1);
      const mn = find(cells, "mesh", false, c1);
      const pn = find(cells, "portkey", false, c1);
      if (usable(dn) && usable(mn) && usable(pn)) {
        const mo = mn.metrics.e2eMs.p50 - dn.metrics.e2eMs.p50;
        const po = pn.metrics.e2eMs.p50 - dn.metrics.e2eMs.p50;
        out.push(`- portkey streams failed, so compared non-stream e2e overhead p50 instead: mesh ${num(mo)} ms, portkey ${num(po)} ms; mesh under half: ${mo < po / 2 ? "met" : "not met"}`);
      }
    }
  }
  const cMax = Math.max(...o.concurrencies);
  const mn = find(cells, "mesh", false, cMax);
  const pn = find(cells, "portkey", false, cMax);
  if (usable(mn) && usable(pn)) {
    const r = mn.metrics.requestThroughput / pn.metrics.requestThroughput;
    out.push(`- non-stream req/s at ${cMax} concurrent: mesh ${num(mn.metrics.requestThroughput)}, portkey ${num(pn.metrics.requestThroughput)} = ${r.toFixed(2)}× (goal ≥ 3×): ${r >= 3 ? "met" : "not met"}`);
  }
  if (out.length === 0) out.push("- not evaluated (a system is missing)");
  return out;
}

function overheadPlots(cells: OverheadCell[], o: OverheadOptions): Record<string, string> {
  const targets = [...new Set(cells.map((c) => c.target))];
  const categories = o.concurrencies.flatMap((c) => [`stream c=${c}`, `non-stream c=${c}`]);
  const value = (t: string, cat: string, pick: (m: RunMetrics) => number) => {
    const [mode, cc] = cat.split(" c=");
    const cell = find(cells, t, mode === "stream", Number(cc));
    return usable(cell) ? pick(cell.metrics) : NaN;
  };
  return {
    "latency-p50": barChart("p50 latency (TTFT for streams, e2e otherwise)", "mode and concurrency", "ms", categories, targets.map((t) => ({ name: t, values: categories.map((cat) => value(t, cat, (m) => (cat.startsWith("stream") ? m.ttftMs.p50 : m.e2eMs.p50))) }))),
    "requests-per-second": barChart("Requests per second", "mode and concurrency", "req/s", categories, targets.map((t) => ({ name: t, values: categories.map((cat) => value(t, cat, (m) => m.requestThroughput)) }))),
  };
}
