import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort } from "../runtime/free-port.js";
import { natsServers } from "./connection.js";

/** Where Debian puts the server binary; `NATS_SERVER_BIN` overrides it. */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const READY_TIMEOUT_MS = 15_000;

/** Every child still running: killed when this process exits, so a crashed test leaves none behind. */
const LIVE_CHILDREN = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of LIVE_CHILDREN) child.kill("SIGKILL");
});

export interface NatsNodeSpec {
  /** The directory for this node's config and JetStream files. */
  dir: string;
  port?: number;
  /** For a cluster: this node's route port, the cluster's name and every node's route port. */
  cluster?: { name: string; port: number; routes: number[] };
  serverName?: string;
}

/**
 * One `nats-server` child with JetStream, for tests and local tools. `stop`
 * kills it (SIGKILL: a crash, not a drain), `start` brings it back on the
 * same ports with the same store, as a restarted pod would.
 */
export class NatsServerProcess {
  #child: ChildProcess | undefined;
  readonly port: number;

  private constructor(
    readonly spec: NatsNodeSpec & { port: number },
    private readonly configFile: string,
  ) {
    this.port = spec.port;
  }

  /** `nats://127.0.0.1:<port>`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Writes the config and starts the server; resolves when it accepts clients. */
  static async start(spec: NatsNodeSpec): Promise<NatsServerProcess> {
    const port = spec.port ?? (await freePort());
    await mkdir(spec.dir, { recursive: true });
    const name = spec.serverName ?? `n${port}`;
    const lines = [`server_name: ${name}`, `listen: 127.0.0.1:${port}`, `jetstream { store_dir: ${JSON.stringify(path.join(spec.dir, "js"))} }`];
    if (spec.cluster) {
      const routes = spec.cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
      lines.push(`cluster { name: ${spec.cluster.name}, listen: 127.0.0.1:${spec.cluster.port}, routes: [${routes}] }`);
    }
    const configFile = path.join(spec.dir, "nats.conf");
    await writeFile(configFile, lines.join("\n") + "\n");
    const server = new NatsServerProcess({ ...spec, port, serverName: name }, configFile);
    await server.start();
    return server;
  }

  /** Starts (or restarts) the process and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(NATS_SERVER_BIN, ["-c", this.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    LIVE_CHILDREN.add(child);
    child.once("exit", () => LIVE_CHILDREN.delete(child));
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4_000);
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!this.running) throw new Error(`nats-server exited: ${stderr}`);
      try {
        const nc = await connect({ servers: this.url, reconnect: false, timeout: 500 });
        await nc.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`nats-server did not start: ${(err as Error).message} ${stderr}`, { cause: err });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Kills the process and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
}

/** A JetStream cluster of `size` nodes on loopback. */
export async function startNatsCluster(dir: string, size = 3): Promise<NatsServerProcess[]> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const nodes = await Promise.all(
    ports.map((port, i) =>
      NatsServerProcess.start({ dir: path.join(dir, `n${i}`), port, serverName: `n${i}`, cluster: { name: "mesh", port: routes[i], routes } }),
    ),
  );
  await waitForJetStream(nodes.map((n) => n.url).join(","), size);
  return nodes;
}

/**
 * Waits until JetStream answers and can place a stream on `replicas` nodes
 * (in a cluster: a meta leader is elected and every peer has joined).
 */
export async function waitForJetStream(url: string, replicas = 1, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const nc = await connect({ servers: natsServers(url), timeout: 1_000 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1_000 });
        await jsm.getAccountInfo();
        if (replicas > 1) {
          const probe = `READY_PROBE_${process.pid}`;
          await jsm.streams.add({ name: probe, subjects: [`ready_probe.${process.pid}`], num_replicas: replicas });
          await jsm.streams.delete(probe);
        }
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await nc.close();
  }
}
