import type { ReliabilityMesh } from "./reliability-mesh.js";

/** Longest a request may take before the load counts it as hung. */
export const HANG_AFTER_MS = 30_000;

/** One request the load sent, and how it ended. */
export interface Outcome {
  i: number;
  stream: boolean;
  startedAt: number;
  endedAt: number;
  /**
   * A stream's first event arrived at (performance.now()): the edge sends it
   * once the router has the shard's first token, after which no retry is possible.
   */
  firstTokenAt?: number;
  /** The mesh's x-request-id. */
  requestId?: string;
  /** "ok", or what went wrong: "status 503 …", "error event …", "hung", "transport …". */
  result: string;
}

/**
 * Steady load of `clients` concurrent clients (half streaming) until
 * `stop()`: every request is read to its end or counted hung after
 * HANG_AFTER_MS, so a test sees each one's fate and timing.
 */
export function steadyLoad(mesh: ReliabilityMesh, clients: number, maxTokens = 16, options: { hangAfterMs?: number; prompt?: (i: number) => string } = {}) {
  const outcomes: Outcome[] = [];
  let running = true;
  let next = 0;
  const one = async (i: number): Promise<Outcome> => {
    const stream = i % 2 === 0;
    const outcome: Outcome = { i, stream, startedAt: performance.now(), endedAt: 0, result: "ok" };
    const signal = AbortSignal.timeout(options.hangAfterMs ?? HANG_AFTER_MS);
    try {
      const res = await fetch(`${mesh.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "tiny-llama",
          messages: [{ role: "user", content: options.prompt?.(i) ?? `load ${i}` }],
          max_tokens: maxTokens,
          ignore_eos: true,
          stream,
        }),
        signal,
      });
      outcome.requestId = res.headers.get("x-request-id") ?? undefined;
      if (!stream || res.status !== 200) {
        const text = await res.text();
        if (res.status !== 200) outcome.result = `status ${res.status} ${text.slice(0, 160)}`;
      } else {
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        let text = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
          if (outcome.firstTokenAt === undefined && text.includes("data: ")) outcome.firstTokenAt = performance.now();
        }
        if (text.includes('"error"')) outcome.result = `error event ${text.slice(-160)}`;
        else if (!text.trimEnd().endsWith("data: [DONE]")) outcome.result = `stream without [DONE] ${text.slice(-160)}`;
      }
    } catch (err) {
      // fetch says only "fetch failed"; the cause says how (reset, closed, refused).
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      outcome.result = signal.aborted ? "hung" : `transport ${cause?.code ?? ""} ${cause?.message ?? String(err)}`.slice(0, 200);
    }
    outcome.endedAt = performance.now();
    return outcome;
  };
  const client = async (): Promise<void> => {
    while (running) outcomes.push(await one(next++));
  };
  const done = Promise.all(Array.from({ length: clients }, client));
  return {
    outcomes,
    /** Stops sending and resolves once every request in flight ended. */
    async stop(): Promise<Outcome[]> {
      running = false;
      await done;
      return outcomes;
    },
  };
}

/** A short summary of failures by kind, for the printed figure. */
export function failureSummary(outcomes: Outcome[]): string {
  const kinds = new Map<string, number>();
  for (const o of outcomes)
    if (o.result !== "ok") kinds.set(o.result.split(" ").slice(0, 2).join(" "), (kinds.get(o.result.split(" ").slice(0, 2).join(" ")) ?? 0) + 1);
  return kinds.size === 0 ? "none" : [...kinds].map(([k, n]) => `${n}× ${k}`).join(", ");
}
