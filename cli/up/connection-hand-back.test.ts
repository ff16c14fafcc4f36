import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionHandOff } from "./connection-hand-off.js";

const LISTENER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/services/edge/src/http-listener.js");

/**
 * A front process on the edge's real listener (from the build, as `llm-mesh up` runs it), taking
 * its connections from the launcher: it answers each request with its pid, and on "drain" drains
 * with a minute's deadline, then reports "drained".
 */
const FRONT_SCRIPT = `
import { listenDualProtocol } from ${JSON.stringify(pathToFileURL(LISTENER).href)};
const answer = (req, res) => { req.resume(); req.once("end", () => res.end(String(process.pid))); };
const server = await listenDualProtocol("127.0.0.1", 0, answer, answer, undefined, "launcher");
process.on("message", async (m) => {
  if (m !== "drain") return;
  await server.close(60_000);
  process.send({ type: "drained" });
});
process.send({ type: "listening" });
`;

/** One request on the agent: the answer, and whether it went on a connection the agent already had. */
function post(agent: http.Agent, port: number): Promise<{ body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/", agent }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ body, reused: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end("{}");
  });
}

describe("a draining front process hands its idle keep-alive connections back to the launcher", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-hand-back-"));
  const script = path.join(dir, "front.mjs");
  const children: ChildProcess[] = [];
  let handOff: ConnectionHandOff;
  const front = async (): Promise<ChildProcess> => {
    const child = fork(script, [], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    children.push(child);
    handOff.attach(child);
    await new Promise((resolve) => child.on("message", (m: { type?: string }) => m?.type === "listening" && resolve(undefined)));
    return child;
  };
  beforeAll(async () => {
    if (!existsSync(LISTENER)) throw new Error("dist/ is missing: run `npm run build` first (npm test does)");
    writeFileSync(script, FRONT_SCRIPT);
    handOff = await ConnectionHandOff.listen("127.0.0.1", 0);
  });
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await handOff?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the connection: a request sent on it while no front process listens is answered by the successor", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await front();
      expect(await post(agent, handOff.port)).toEqual({ body: String(first.pid), reused: false });
      expect(await post(agent, handOff.port)).toEqual({ body: String(first.pid), reused: true });

      // Its drain ends (well before its minute) once the idle connection went back to the launcher, not closed.
      const drained = new Promise((resolve) => first.on("message", (m: { type?: string }) => m?.type === "drained" && resolve(undefined)));
      first.send("drain");
      await drained;
      first.kill("SIGKILL");

      // Nobody serves now: the request waits on the open connection, unread, until the successor reads it.
      const waiting = post(agent, handOff.port);
      const second = await front();
      expect(await waiting).toEqual({ body: String(second.pid), reused: true });
      expect(await post(agent, handOff.port)).toEqual({ body: String(second.pid), reused: true });
    } finally {
      agent.destroy();
    }
  }, 30_000);

  it("stops listening when told, also once every front process that was handed connections exited", async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise((exited) => {
            if (c.exitCode !== null || c.signalCode !== null) return exited(undefined);
            c.once("exit", exited);
            c.kill("SIGKILL");
          }),
      ),
    );
    const port = handOff.port;
    await handOff.close();
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve("connected"));
      socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
  });
});
