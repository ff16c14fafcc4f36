import { isUtf8 } from "node:buffer";

/**
 * Micro-benchmark of the edge's body decoding (issue 18, R5): a chat
 * request's bytes to a JSON value, as `readJson` did before (lenient
 * `toString("utf8")`) and the strict alternatives (WHATWG fatal
 * TextDecoder, what it does now; `buffer.isUtf8` then `toString`). Run:
 * `npx tsc -p tsconfig.json && node dist/tools/bench/body-decode-bench.js [rounds=20000]`.
 */
const rounds = Number(process.argv[2] ?? 20_000);
/** Interleaved rounds per body. */
const ROUNDS = 10;
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function chat(content: string, more: object = {}): Buffer {
  return Buffer.from(JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content }], ...more }));
}

const bodies: Record<string, Buffer> = {
  "small chat (180 B)": chat("Say hello to the mesh, please.", { max_tokens: 16, stream: true }),
  "long chat (64 KiB, accents)": chat("déjà vu, naïve café — ".repeat(2_800)),
  "large chat (1 MiB ASCII)": chat("x".repeat(1 << 20)),
};

const ways: Record<string, (b: Buffer) => unknown> = {
  "decode only: toString": (b) => b.toString("utf8"),
  "decode only: TextDecoder fatal": (b) => fatal.decode(b),
  "toString (lenient, before)": (b): unknown => JSON.parse(b.toString("utf8")),
  "TextDecoder fatal (after)": (b): unknown => JSON.parse(fatal.decode(b)),
  "isUtf8 + toString": (b) => {
    if (!isUtf8(b)) throw new Error("invalid");
    return JSON.parse(b.toString("utf8")) as unknown;
  },
};

for (const [name, body] of Object.entries(bodies)) {
  const n = Math.max(20, Math.round(rounds / Math.max(1, body.length / 4096)));
  const line: string[] = [];
  // Interleaved rounds so the machine's noise weighs on every way alike.
  const totals = new Map(Object.keys(ways).map((w) => [w, 0]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [way, fn] of Object.entries(ways)) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn(body);
      totals.set(way, totals.get(way)! + Number(process.hrtime.bigint() - started));
    }
  }
  for (const [way, ns] of totals) line.push(`${way} ${(ns / (ROUNDS * n) / 1000).toFixed(2)} µs`);
  process.stdout.write(`${name}, ${n} × ${ROUNDS} rounds: ${line.join("; ")}\n`);
}
