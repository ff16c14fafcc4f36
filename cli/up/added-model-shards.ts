import { rename, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { CatalogModel } from "../../lib/catalog/index.js";
import { watchAddedModels } from "../../lib/catalog/index.js";
import type { LogFormat, Logger } from "../../lib/runtime/index.js";
import { freePort } from "../../lib/runtime/index.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { ModelAdminService } from "../../src/gen/mesh/auth/v1/models_pb.js";
import { SupervisedProcess } from "./process-supervisor.js";

/** The file in the data dir where the launcher lists its added models' shards (the router watches it). */
export const ADDED_SHARDS_FILE = "added-shards.json";

export interface AddedModelShardsOptions {
  dataDir: string;
  authAddress: string;
  serviceToken: string;
  /** Environment every shard child gets (data dir, host, service token). */
  env: Record<string, string>;
  script: string;
  out: (line: string) => void;
  logFormat: LogFormat;
  color: boolean;
  log: Logger;
  /** Resolves once `address` reports SERVING, or as soon as `cancelled()` is true. */
  waitServing: (name: string, address: string, cancelled: () => boolean) => Promise<void>;
  stopGraceMs: number;
  /** Keep one spare shard process started ahead of need (MESH_SPARE_SHARD=0 turns it off). */
  spare?: boolean;
}

/** The spare's process name until it is given a model. */
const SPARE_NAME = "shard:spare";
/** A spare still booting is awaited this long (it is ahead of a process started now) before a fresh process is started instead. */
const SPARE_WAIT_MS = 3_000;

interface Spare {
  proc: SupervisedProcess;
  /** The pid that said it is ready (a restarted spare must say so again). */
  readyPid?: number;
  /** Resolves when a spare process first says it is ready. */
  ready: Promise<void>;
}

interface Running {
  model: string;
  backend: string;
  address: string;
  proc: SupervisedProcess;
  /** Reported SERVING: only then is it listed for the router. */
  ready: boolean;
}

/**
 * The launcher's half of models added at run time: follows auth's
 * `WatchModels`, starts one shard process per replica of an added model's
 * backends (supervised like every other child), and once they report
 * SERVING lists their loopback addresses in `<data dir>/added-shards.json`,
 * which the router watches. A removed model leaves the file first, then its
 * shards get SIGTERM and drain: requests running on them finish.
 */
export class AddedModelShards {
  readonly #running = new Map<string, Running[]>();
  readonly #stopping = new Set<Promise<void>>();
  readonly #file: string;
  #writes = Promise.resolve();
  readonly #stop = new AbortController();
  /** A shard process booted and waiting for a model (`MESH_SHARD_STANDBY`), and the pid that said it is ready. */
  #spare: Spare | undefined;

  constructor(private readonly options: AddedModelShardsOptions) {
    this.#file = path.join(options.dataDir, ADDED_SHARDS_FILE);
  }

  /** Starts the spare shard process (at once, so it boots while the rest of the mesh does). */
  startSpare(): void {
    if (this.options.spare !== false && !this.#spare) this.#startSpare();
  }

  /** Starts following the added models (returns at once; the file is written empty first). */
  async start(): Promise<void> {
    await this.#write();
    this.startSpare();
    const client = grpcClient(ModelAdminService, this.options.authAddress, { serviceToken: this.options.serviceToken });
    void watchAddedModels(client, { added: (m) => this.#add(m), removed: (n) => this.#remove(n) }, this.#stop.signal, this.options.log);
  }

  /** Stops following and stops every added model's shards. */
  async stop(): Promise<void> {
    this.#stop.abort();
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare) this.#stopping.add(spare.proc.stop(this.options.stopGraceMs));
    for (const name of [...this.#running.keys()]) this.#remove(name);
    await Promise.all([...this.#stopping]);
  }

  async #add(model: CatalogModel): Promise<void> {
    if (this.#stop.signal.aborted) return;
    const running: Running[] = [];
    let spares = 0;
    const spare = this.#spare;
    if (spare && spare.readyPid === undefined) await Promise.race([spare.ready, new Promise((r) => setTimeout(r, SPARE_WAIT_MS).unref())]);
    if (this.#stop.signal.aborted) return;
    for (const backend of model.backends) {
      for (let i = 0; i < backend.replicas; i++) {
        const port = await freePort();
        const name = `shard:${model.name}/${backend.name}${backend.replicas > 1 ? `#${i}` : ""}`;
        const env = {
          ...this.options.env,
          PORT: String(port),
          MESH_SHARD_MODEL: model.name,
          MESH_SHARD_BACKEND: JSON.stringify(backend),
          // On loopback and known by address, as the catalog's shards are (see launcher.ts).
          MESH_NATS_URL: "",
        };
        const fromSpare = this.#fromSpare(name, env);
        if (fromSpare) spares++;
        const proc =
          fromSpare ?? new SupervisedProcess({ name, script: this.options.script, env }, this.options.out, this.options.logFormat, this.options.color);
        if (proc.pid === undefined) proc.start();
        running.push({ model: model.name, backend: backend.name, address: `127.0.0.1:${port}`, proc, ready: false });
      }
    }
    this.#running.set(model.name, running);
    this.options.out(
      `[launcher] added model ${model.name}: starting ${running.length} shard${running.length === 1 ? "" : "s"}${spares > 0 ? ` (${spares} from the spare)` : ""}`,
    );
    // Each replica is listed as soon as it serves, so a model is served once its first shard is up.
    // Not awaited: the next change on the watch must not wait for these shards to start.
    const gone = (): boolean => this.#stop.signal.aborted || this.#running.get(model.name) !== running;
    for (const r of running) {
      void this.options
        .waitServing(r.proc.spec.name, r.address, gone)
        .then(async () => {
          if (gone()) return;
          r.ready = true;
          await this.#write();
        })
        .catch((err: unknown) => this.options.out(`[launcher] ${r.proc.spec.name}: ${(err as Error).message}`));
    }
  }

  /**
   * Hands the spare process the shard's environment (it becomes that shard:
   * Node and the modules are loaded already, so it listens within
   * milliseconds) and starts the next spare. Undefined when none is ready.
   */
  #fromSpare(name: string, env: Record<string, string>): SupervisedProcess | undefined {
    const spare = this.#spare;
    if (!spare || spare.readyPid === undefined || spare.readyPid !== spare.proc.pid) return undefined;
    const assignment = { PORT: env.PORT, MESH_SHARD_MODEL: env.MESH_SHARD_MODEL, MESH_SHARD_BACKEND: env.MESH_SHARD_BACKEND, MESH_NATS_URL: "" };
    if (!spare.proc.send({ type: "assign", env: assignment })) return undefined;
    // A restart (after a crash) boots as this shard, not as a spare.
    spare.proc.spec.name = name;
    spare.proc.spec.env = env;
    this.#spare = undefined;
    this.#startSpare();
    return spare.proc;
  }

  #startSpare(): void {
    if (this.#stop.signal.aborted) return;
    const env = { ...this.options.env, MESH_SHARD_STANDBY: "1", MESH_NATS_URL: "" };
    const proc = new SupervisedProcess({ name: SPARE_NAME, script: this.options.script, env }, this.options.out, this.options.logFormat, this.options.color);
    let ready!: () => void;
    const spare: Spare = { proc, ready: new Promise<void>((r) => (ready = r)) };
    proc.onMessage((message) => {
      if ((message as { type?: string } | null)?.type !== "standby") return;
      spare.readyPid = proc.pid;
      ready();
    });
    this.#spare = spare;
    proc.start();
  }

  #remove(name: string): void {
    const running = this.#running.get(name);
    if (!running) return;
    this.#running.delete(name);
    this.options.out(`[launcher] removed model ${name}: its shards drain and stop`);
    const done = this.#write()
      .then(() => Promise.all(running.map((r) => r.proc.stop(this.options.stopGraceMs))))
      .then(() => undefined);
    this.#stopping.add(done);
    void done.finally(() => this.#stopping.delete(done));
  }

  /** Writes the file atomically (a rename), one write at a time. */
  #write(): Promise<void> {
    const models: Record<string, Record<string, string[]>> = {};
    for (const [model, running] of this.#running) {
      const backends: Record<string, string[]> = {};
      for (const r of running) if (r.ready) (backends[r.backend] ??= []).push(r.address);
      if (Object.keys(backends).length > 0) models[model] = backends;
    }
    const text = `${JSON.stringify({ models }, null, 2)}\n`;
    const tmp = `${this.#file}.tmp`;
    this.#writes = this.#writes.then(async () => {
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.#file);
    });
    return this.#writes;
  }
}
