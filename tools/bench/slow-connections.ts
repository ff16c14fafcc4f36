/**
 * Slow and idle connections against the edge's listener with its default
 * limits (issue 17, item 5): N slowloris connections (headers at one byte a
 * second), N silent TCP connections and N that send only the HTTP/2
 * preface; prints how many of each are still open over time, and whether
 * a legitimate request is answered meanwhile. Prints numbers; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/tools/bench/slow-connections.js [per-kind] [seconds]
 */
import * as net from "node:net";
import { DEFAULT_CONNECTION_LIMITS, listenDualProtocol } from "../../services/edge/src/http-listener.js";

const perKind = Number(process.argv[2] ?? 300);
const seconds = Number(process.argv[3] ?? 25);
const KINDS = ["slowloris", "silent", "h2-preface"] as const;
type Kind = (typeof KINDS)[number];

const answer = (_req: unknown, res: { end(body: string): void }): void => res.end("ok");
const server = await listenDualProtocol("127.0.0.1", 0, answer, answer, DEFAULT_CONNECTION_LIMITS);
const open: Record<Kind, number> = { slowloris: 0, silent: 0, "h2-preface": 0 };
const drips: NodeJS.Timeout[] = [];

function connect(kind: Kind): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(server.port, "127.0.0.1", () => {
      open[kind]++;
      if (kind === "slowloris") {
        socket.write("GET /v1/models HTTP/1.1\r\nHost: x\r\n");
        drips.push(setInterval(() => socket.writable && socket.write("X"), 1_000));
      } else if (kind === "h2-preface") {
        socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      }
      resolve();
    });
    // Read what the server sends, so its FIN is seen (a paused socket never reports the close).
    socket.resume();
    socket.on("error", () => {});
    socket.once("close", () => {
      open[kind]--;
      resolve();
    });
  });
}

const started = performance.now();
for (const kind of KINDS) for (let i = 0; i < perKind; i++) await connect(kind);
process.stdout.write(
  `${perKind} connections of each kind; limits ${JSON.stringify(DEFAULT_CONNECTION_LIMITS)}\n\n| t (s) | slowloris open | silent open | h2-preface open | GET / answered in (ms) |\n|---|---|---|---|---|\n`,
);
for (let t = 1; t <= seconds; t++) {
  await new Promise((r) => setTimeout(r, Math.max(0, started + t * 1_000 - performance.now())));
  const t0 = performance.now();
  const ok = await fetch(`http://127.0.0.1:${server.port}/`)
    .then((r) => r.text())
    .catch(() => "failed");
  const ms = ok === "ok" ? (performance.now() - t0).toFixed(1) : ok;
  process.stdout.write(`| ${t} | ${open.slowloris} | ${open.silent} | ${open["h2-preface"]} | ${ms} |\n`);
  if (KINDS.every((k) => open[k] === 0)) break;
}
for (const d of drips) clearInterval(d);
await server.close(100);
process.exit(0);
