/**
 * `overhead`: what a hop costs. The same zero-delay fake engine is called
 * directly, through the mesh in both topologies (split and combined, an
 * openai-upstream backend) and through Portkey's gateway, in one run; TTFT
 * and e2e p50/p99 at each concurrency, stream and non-stream, each system's
 * overhead over direct, the mesh's CPU per request in every process, and the
 * transport floor (a bare gRPC stream and HTTP exchange) measured beside it.
 */
import { runLoad } from "../load-generator.js";
import { aggregate } from "../metrics.js";
import type { RunMetrics } from "../metrics.js";
import { closeClientSockets, sendChat } from "../openai-client.js";
import type { ChatJob } from "../openai-client.js";
import { progressBar } from "../progress.js";
import { num, table } from "../report.js";
import type { BenchReport } from "../report.js";
import { barChart } from "../../../lib/svg/index.js";
import { startStack } from "./stack.js";
import { CpuMeter } from "../process-cpu.js";
import { measureTransportFloor } from "../transport-floor.js";
import type { TransportFloor } from "../transport-floor.js";

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
  /** ms of CPU per completed request in each of the system's processes (mesh targets). */
  cpuPerRequestMs?: Record<string, number>;
}

/** Hops a chat request crosses in each topology (what the floor counts). */
const HOPS: Record<string, { grpc: number; http: number }> = {
  // client→edge HTTP, edge→router and router→shard gRPC streams, shard→upstream HTTP
  // (the mesh holds one end of each outer HTTP exchange: together, one exchange).
  mesh: { grpc: 2, http: 1 },
  // edge→router in memory: only router→shard crosses a process.
  "mesh-combined": { grpc: 1, http: 1 },
};

const PROMPT = "Measure the overhead of every hop between a client and its engine.";

/** Runs every cell and returns the report. */
export async function runOverhead(o: OverheadOptions, log: (line: string) => void): Promise<BenchReport> {
  const stack = await startStack(o.outputTokens, o.portkey, log, ["split", "combined"]);
  const cells: OverheadCell[] = [];
  let floor: TransportFloor | undefined;
  try {
    floor = await measureTransportFloor();
    log(
      `transport floor: gRPC stream ${floor.grpcStreamCpuMs.toFixed(3)} ms CPU, HTTP exchange ${floor.httpExchangeCpuMs.toFixed(3)} ms CPU per call (both ends)`,
    );
    for (const stream of [true, false]) {
      for (const concurrency of o.concurrencies) {
        for (const { name, target } of stack.targets) {
          const job: ChatJob = { prompt: PROMPT, maxTokens: o.outputTokens, stream, ignoreEos: true };
          const send = (_i: number, t0: number) => sendChat(target, job, t0, 30_000);
          await runLoad(o.warmup, { kind: "concurrency", clients: concurrency }, send);
          const pids = stack.targets.find((t) => t.name === name)?.pids?.();
          const meter = pids ? new CpuMeter(pids) : undefined;
          const run = await runLoad(
            o.requests,
            { kind: "concurrency", clients: concurrency },
            send,
            progressBar(`${name} ${stream ? "stream" : "non-stream"} c=${concurrency}`, o.requests, o.progress),
          );
          const metrics = aggregate(run.results, run.durationS);
          if (metrics.failed)
            log(`  ${name} ${stream ? "stream" : "non-stream"} c=${concurrency}: ${metrics.failed} failed (${metrics.errors.join("; ").slice(0, 300)})`);
          const cpu = meter?.read();
          const cpuPerRequestMs = cpu && metrics.completed > 0 ? Object.fromEntries([...cpu].map(([k, ms]) => [k, ms / metrics.completed])) : undefined;
          cells.push({ target: name, stream, concurrency, metrics, cpuPerRequestMs });
          closeClientSockets();
        }
      }
    }
  } finally {
    await stack.stop();
  }
  return {
    scenario: "overhead",
    data: { settings: o, startFailures: stack.failed, floor, cells },
    markdown: overheadMarkdown(cells, stack.failed, o, floor),
    plots: overheadPlots(cells, o),
  };
}

function find(cells: OverheadCell[], target: string, stream: boolean, c: number): OverheadCell | undefined {
  return cells.find((x) => x.target === target && x.stream === stream && x.concurrency === c);
}

/** Latency of a cell: TTFT for streams, e2e otherwise. */
function usable(cell: OverheadCell | undefined): cell is OverheadCell {
  return !!cell && cell.metrics.completed > 0;
}

/** The floor of a topology: its cross-process hops at the bare cost of each. */
function floorOf(target: string, floor: TransportFloor | undefined): number | undefined {
  const hops = HOPS[target];
  return hops && floor ? hops.grpc * floor.grpcStreamCpuMs + hops.http * floor.httpExchangeCpuMs : undefined;
}

function cpuTable(cells: OverheadCell[], floor: TransportFloor | undefined): string[] {
  const rows = cells.filter((c) => c.cpuPerRequestMs);
  if (rows.length === 0) return [];
  const services = [...new Set(rows.flatMap((c) => Object.keys(c.cpuPerRequestMs!)))];
  return [
    "CPU per request (ms, user + system from /proc, summed over each system's processes; the fake engine not counted):",
    "",
    table(
      ["system", "mode", "conc.", ...services, "sum", "floor", "sum / floor"],
      rows.map((c) => {
        const sum = Object.values(c.cpuPerRequestMs!).reduce((a, b) => a + b, 0);
        const f = floorOf(c.target, floor);
        return [
          c.target,
          c.stream ? "stream" : "non-stream",
          String(c.concurrency),
          ...services.map((sv) => c.cpuPerRequestMs![sv] ?? NaN),
          sum,
          f ?? NaN,
          f ? `${(sum / f).toFixed(2)}×` : "–",
        ];
      }),
    ),
    "",
    floor
      ? `Floor = the topology's cross-process hops × the bare cost of each, measured in this run: gRPC server stream ${num(floor.grpcStreamCpuMs)} ms, HTTP/1.1 exchange ${num(floor.httpExchangeCpuMs)} ms (both ends; split: 2 gRPC + 1 HTTP, combined: 1 gRPC + 1 HTTP).`
      : "Floor not measured.",
    "",
  ];
}

function overheadMarkdown(cells: OverheadCell[], failed: Array<{ name: string; error: string }>, o: OverheadOptions, floor?: TransportFloor): string {
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
  const errs = cells
    .filter((c) => c.metrics.failed > 0)
    .map(
      (c) => `- ${c.target} ${c.stream ? "stream" : "non-stream"} c=${c.concurrency}: ${c.metrics.failed} failed: ${c.metrics.errors.join("; ").slice(0, 300)}`,
    );
  if (errs.length) parts.push("Failures:", "", ...errs, "");
  parts.push(...cpuTable(cells, floor));
  parts.push("Goals:", "", ...goals(cells, o, floor));
  return parts.join("\n");
}

function goals(cells: OverheadCell[], o: OverheadOptions, floor?: TransportFloor): string[] {
  const out: string[] = [];
  const c1 = Math.min(...o.concurrencies);
  const cMax = Math.max(...o.concurrencies);
  const overhead = (target: string, stream: boolean): number | undefined => {
    const d = find(cells, "direct", stream, c1);
    const t = find(cells, target, stream, c1);
    if (!usable(d) || !usable(t)) return undefined;
    return stream ? t.metrics.ttftMs.p50 - d.metrics.ttftMs.p50 : t.metrics.e2eMs.p50 - d.metrics.e2eMs.p50;
  };
  const verdict = (ok: boolean) => (ok ? "met" : "not met");
  for (const stream of [false, true]) {
    const what = stream ? "stream TTFT" : "non-stream e2e";
    const pk = overhead("portkey", stream);
    for (const [target, share] of [
      ["mesh", 1],
      ["mesh-combined", 0.5],
    ] as const) {
      const m = overhead(target, stream);
      if (m === undefined) continue;
      if (pk === undefined) out.push(`- ${target} ${what} overhead p50 at ${c1} client: ${num(m)} ms (Portkey: no ${what} figure)`);
      else
        out.push(
          `- ${target} ${what} overhead p50 at ${c1} client: ${num(m)} ms vs Portkey ${num(pk)} ms (goal ≤ ${share === 1 ? "" : "½ × "}Portkey's): ${verdict(m <= pk * share)}`,
        );
    }
  }
  const pn = find(cells, "portkey", false, cMax);
  for (const [target, factor] of [
    ["mesh", 1],
    ["mesh-combined", 2],
  ] as const) {
    const mn = find(cells, target, false, cMax);
    if (!usable(mn) || !usable(pn)) continue;
    const r = mn.metrics.requestThroughput / pn.metrics.requestThroughput;
    out.push(
      `- ${target} non-stream req/s at ${cMax} clients: ${num(mn.metrics.requestThroughput)} vs Portkey ${num(pn.metrics.requestThroughput)} = ${r.toFixed(2)}× (goal ≥ ${factor}×): ${verdict(r >= factor)}`,
    );
  }
  for (const target of ["mesh", "mesh-combined"]) {
    const cell = find(cells, target, false, cMax);
    const f = floorOf(target, floor);
    if (!cell?.cpuPerRequestMs || !f) continue;
    const sum = Object.values(cell.cpuPerRequestMs).reduce((a, b) => a + b, 0);
    out.push(
      `- ${target} CPU per non-stream request at ${cMax} clients: ${num(sum)} ms = ${(sum / f).toFixed(2)}× its floor ${num(f)} ms (goal ≤ 1.5×): ${verdict(sum <= 1.5 * f)}`,
    );
  }
  const failedCells = cells.filter((c) => c.target.startsWith("mesh") && c.metrics.failed > 0);
  out.push(`- failed mesh requests: ${failedCells.reduce((a, c) => a + c.metrics.failed, 0)} (goal 0): ${verdict(failedCells.length === 0)}`);
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
    "latency-p50": barChart(
      "p50 latency (TTFT for streams, e2e otherwise)",
      "mode and concurrency",
      "ms",
      categories,
      targets.map((t) => ({ name: t, values: categories.map((cat) => value(t, cat, (m) => (cat.startsWith("stream") ? m.ttftMs.p50 : m.e2eMs.p50))) })),
    ),
    "requests-per-second": barChart(
      "Requests per second",
      "mode and concurrency",
      "req/s",
      categories,
      targets.map((t) => ({ name: t, values: categories.map((cat) => value(t, cat, (m) => m.requestThroughput)) })),
    ),
  };
}
