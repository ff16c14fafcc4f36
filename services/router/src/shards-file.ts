import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { z } from "zod";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ReplicaSet } from "./replicas.js";

/** How often the file's status is polled (a rename by the launcher shows as a change). */
export const SHARDS_FILE_POLL_MS = 100;
/** The source name of these addresses in a replica set. */
const SOURCE = "launcher";
const MAX_FILE_BYTES = 1024 * 1024;

const shardsFileSchema = z.object({
  models: z.record(z.string().max(256), z.record(z.string().max(256), z.array(z.string().regex(/^[A-Za-z0-9.:[\]-]{1,300}$/)).max(64))),
});

/** What the launcher writes: every added model's shard addresses, by model and backend. */
export type ShardsFile = z.infer<typeof shardsFileSchema>;

/**
 * Follows the launcher's shards file (`MESH_ROUTER_SHARDS_FILE`): the
 * loopback addresses of the shard processes it started for models added at
 * run time. Each change is applied to the replica sets as the "launcher"
 * source; `apply` is called again when a model is added (its set is new).
 */
export class ShardsFileWatcher {
  #current: ShardsFile = { models: {} };

  constructor(
    private readonly file: string,
    private readonly replicaSet: (model: string, backend: string) => ReplicaSet | undefined,
    private readonly log: Logger,
  ) {}

  start(signal: AbortSignal): void {
    this.#read();
    const listener = (): void => this.#read();
    watchFile(this.file, { interval: SHARDS_FILE_POLL_MS, persistent: false }, listener);
    signal.addEventListener("abort", () => unwatchFile(this.file, listener), { once: true });
  }

  /** Gives every routed backend named in the file its addresses (and an empty list to those the file dropped). */
  apply(previous: ShardsFile = this.#current): void {
    for (const [model, backends] of Object.entries(previous.models)) {
      for (const backend of Object.keys(backends)) if (!this.#current.models[model]?.[backend]) this.replicaSet(model, backend)?.setSource(SOURCE, []);
    }
    for (const [model, backends] of Object.entries(this.#current.models)) {
      for (const [backend, addresses] of Object.entries(backends)) this.replicaSet(model, backend)?.setSource(SOURCE, addresses);
    }
  }

  #read(): void {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch {
      return; // Not written yet: no added model has shards.
    }
    if (text.length > MAX_FILE_BYTES) return void this.log.warn({ file: this.file }, "shards file too large; ignored");
    let parsed: ShardsFile;
    try {
      parsed = shardsFileSchema.parse(JSON.parse(text));
    } catch (err) {
      return void this.log.warn({ file: this.file, err: (err as Error).message }, "shards file unreadable; ignored");
    }
    const previous = this.#current;
    this.#current = parsed;
    this.apply(previous);
  }
}
