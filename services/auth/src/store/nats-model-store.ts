import { jetstream } from "@nats-io/jetstream";
import { StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Code, meshError } from "../../../../lib/errors.js";
import { retryTransient } from "../../../../lib/nats/index.js";
import { KvMirror } from "../../../../lib/nats/kv-mirror.js";
import type { MeshNatsNames } from "../../../../lib/nats/index.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { ModelChange, ModelRecord, ModelStore } from "./model-store.js";

const JS_CALL_TIMEOUT_MS = 2_000;
/** How long a write waits until this replica's mirror shows it. */
const READ_YOUR_WRITE_MS = 5_000;
const KEY_PREFIX = "model.";

/**
 * Added models in the KV bucket `<p>_models` (`model.<name>` → JSON record),
 * shared by every auth replica and every mesh on that NATS. Reads come from
 * a watch-fed mirror; `onChange` reports every replica's changes from the
 * watch, so each is seen once wherever it was made.
 */
export class NatsModelStore implements ModelStore {
  private constructor(
    private readonly kv: KV,
    private readonly mirror: KvMirror,
    private readonly names: MeshNatsNames,
    private readonly nc: NatsConnection | undefined,
  ) {}

  /** Opens (creating if needed) the bucket; `ownsConnection`: `close` closes `nc` too. */
  static async open(nc: NatsConnection, names: MeshNatsNames, options: { replicas?: number; log?: Logger; ownsConnection?: boolean }): Promise<NatsModelStore> {
    const kvm = new Kvm(jetstream(nc, { timeout: JS_CALL_TIMEOUT_MS }));
    const kv = await kvm.create(names.modelsBucket, {
      history: 1,
      replicas: options.replicas ?? 1,
      storage: StorageType.File,
      description: "mesh models: catalog entries added at run time",
    });
    const mirror = await KvMirror.open(kv, { log: options.log });
    return new NatsModelStore(kv, mirror, names, options.ownsConnection ? nc : undefined);
  }

  async list(): Promise<ModelRecord[]> {
    const records: ModelRecord[] = [];
    for (const [, value] of this.mirror.entries(KEY_PREFIX)) {
      const record = decode(value);
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.addedAtMs - b.addedAtMs || a.name.localeCompare(b.name));
  }

  async add(record: ModelRecord): Promise<boolean> {
    let revision: number;
    try {
      revision = await retryTransient(() => this.kv.create(this.names.modelKey(record.name), JSON.stringify(record)));
    } catch (err) {
      if (this.mirror.get(this.names.modelKey(record.name)) || /wrong last sequence|exists/i.test((err as Error).message)) return false;
      throw unavailable(err);
    }
    await this.mirror.waitFor(revision, READ_YOUR_WRITE_MS);
    return true;
  }

  async remove(name: string): Promise<ModelRecord | undefined> {
    const key = this.names.modelKey(name);
    const value = this.mirror.get(key);
    const record = value ? decode(value) : undefined;
    if (!record) return undefined;
    try {
      await retryTransient(() => this.kv.delete(key));
    } catch (err) {
      throw unavailable(err);
    }
    // The delete's revision is the bucket's newest; wait until the mirror has passed it.
    const last = (await this.kv.status().catch(() => undefined))?.streamInfo.state.last_seq ?? this.mirror.revision;
    await this.mirror.waitFor(last, READ_YOUR_WRITE_MS);
    return record;
  }

  onChange(listener: (change: ModelChange) => void): () => void {
    return this.mirror.onChange((c) => {
      if (!c.key.startsWith(KEY_PREFIX)) return;
      if (c.value) {
        const record = decode(c.value);
        if (record) listener({ kind: "added", record });
      } else if (c.previous) {
        const record = decode(c.previous);
        if (record) listener({ kind: "removed", record });
      }
    });
  }

  async close(): Promise<void> {
    this.mirror.stop();
    await this.nc?.close().catch(() => {});
  }
}

function decode(value: Uint8Array): ModelRecord | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(value).toString("utf8")) as Partial<ModelRecord>;
    if (typeof parsed.name !== "string" || typeof parsed.entryJson !== "string") return undefined;
    return { name: parsed.name, entryJson: parsed.entryJson, addedAtMs: Number(parsed.addedAtMs) || 0 };
  } catch {
    return undefined;
  }
}

function unavailable(err: unknown) {
  return meshError(Code.Unavailable, "the model store (NATS) is unavailable; nothing was changed", { reason: "store_unavailable", cause: err });
}
