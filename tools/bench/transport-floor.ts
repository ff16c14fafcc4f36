/**
 * The transport floor: what one bare hop costs in CPU on this machine,
 * measured in the same run as the mesh. A child process serves a bare
 * grpc-js server-streaming method (three small messages per call, as a
 * generation's started/delta/finished) and a bare node:http JSON endpoint;
 * this process calls each N times with a keep-alive connection. CPU per call
 * = (the child's CPU + this process's CPU) / N: both ends of the hop.
 */
import { fork } from "node:child_process";
import * as http from "node:http";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { processCpuMs } from "./process-cpu.js";

const STREAM_PATH = "/floor.v1.Floor/Stream";
const identity = (b: Buffer): Buffer => b;
const MESSAGE = Buffer.alloc(48, 1);
const BODY = JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(200) }], max_tokens: 16 });
const ANSWER = JSON.stringify({
  id: "x",
  object: "chat.completion",
  choices: [{ index: 0, message: { role: "assistant", content: "y".repeat(100) } }],
  usage: { prompt_tokens: 1, completion_tokens: 1 },
});

/** CPU per bare call, in ms: a gRPC server-streaming call and an HTTP/1.1 keep-alive exchange. */
export interface TransportFloor {
  grpcStreamCpuMs: number;
  httpExchangeCpuMs: number;
  calls: number;
}

/** Serves the bare endpoints (run as a forked child): reports its ports over IPC. */
async function serve(): Promise<void> {
  const server = new grpc.Server();
  server.addService(
    {
      stream: {
        path: STREAM_PATH,
        requestStream: false,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        call.write(MESSAGE);
        call.write(MESSAGE);
        call.write(MESSAGE);
        call.end();
      },
    },
  );
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const web = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
  process.send!({ grpcPort, httpPort: (web.address() as { port: number }).port });
}

/** Measures the floor with `calls` sequential calls of each kind (after a warm-up). */
export async function measureTransportFloor(calls = 2_000): Promise<TransportFloor> {
  const child = fork(fileURLToPath(import.meta.url), ["--serve"], { stdio: "ignore" });
  try {
    const ports = await new Promise<{ grpcPort: number; httpPort: number }>((resolve) => child.once("message", (m) => resolve(m as never)));
    const client = new grpc.Client(`127.0.0.1:${ports.grpcPort}`, grpc.credentials.createInsecure());
    const grpcCall = () =>
      new Promise<void>((resolve, reject) => {
        const call = client.makeServerStreamRequest(STREAM_PATH, identity, identity, MESSAGE);
        call.on("data", () => {});
        call.on("error", reject);
        call.on("status", () => resolve());
      });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const httpCall = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: ports.httpPort,
            method: "POST",
            path: "/",
            agent,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) },
          },
          (res) => {
            res.resume();
            res.on("end", resolve);
          },
        );
        req.on("error", reject);
        req.end(BODY);
      });
    const measure = async (call: () => Promise<void>): Promise<number> => {
      for (let i = 0; i < 200; i++) await call();
      const childStart = processCpuMs(child.pid!) ?? 0;
      const selfStart = process.cpuUsage();
      for (let i = 0; i < calls; i++) await call();
      const self = process.cpuUsage(selfStart);
      const childMs = (processCpuMs(child.pid!) ?? 0) - childStart;
      return (childMs + (self.user + self.system) / 1000) / calls;
    };
    const grpcStreamCpuMs = await measure(grpcCall);
    const httpExchangeCpuMs = await measure(httpCall);
    client.close();
    agent.destroy();
    return { grpcStreamCpuMs, httpExchangeCpuMs, calls };
  } finally {
    child.kill();
  }
}

if (process.argv.includes("--serve") && process.argv[1] === fileURLToPath(import.meta.url)) void serve();
