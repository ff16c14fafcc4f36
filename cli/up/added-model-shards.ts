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
  /** Resolves once `address` reports SERVING (or the launcher stops). */
  waitServing: (name: string, address: string) => Promise<void>;
  stopGraceMs: number;
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

  constructor(private readonly options: AddedModelShardsOptions) {
    this.#file = path.join(options.dataDir, ADDED_SHARDS_FILE);
  }

  /** Starts following the added models (returns at once; the file is written empty first). */
  async start(): Promise<void> {
    await this.#write();
    const client = grpcClient(ModelAdminService, this.options.authAddress, { serviceToken: this.options.serviceToken });
    void watchAddedModels(client, { added: (m) => this.#add(m), removed: (n) => this.#remove(n) }, this.#stop.signal, this.options.log);
  }

  /** Stops following and stops every added model's shards. */
  async stop(): Promise<void> {
    this.#stop.abort();
    for (const name of [...this.#running.keys()]) this.#remove(name);
    await Promise.all([...this.#stopping]);
  }

  async #add(model: CatalogModel): Promise<void> {
    if (this.#stop.signal.aborted) return;
    const running: Running[] = [];
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
        const proc = new SupervisedProcess({ name, script: this.options.script, env }, this.options.out, this.options.logFormat, this.options.color);
        proc.start();
        running.push({ model: model.name, backend: backend.name, address: `127.0.0.1:${port}`, proc, ready: false });
      }
    }
    this.#running.set(model.name, running);
    this.options.out(`[launcher] added model ${model.name}: starting ${running.length} shard${running.length === 1 ? "" : "s"}`);
    // Each replica is listed as soon as it serves, so a model is served once its first shard is up.
    await Promise.all(
      running.map(async (r) => {
        await this.options.waitServing(r.proc.spec.name, r.address);
        r.ready = true;
        if (this.#running.get(model.name) === running) await this.#write();
      }),
    );
  }

  #remove(name: string): void {
    const running = this.#running.get(name);
    if (!running) return;
    this.#running.delete(name);
    this.options.out(`[launcher] removed model ${name}: its shards drain and stop`);
    const done = this.#write().then(() => Promise.all(running.map((r) => r.proc.stop(this.options.stopGraceMs)))).then(() => undefined);
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
