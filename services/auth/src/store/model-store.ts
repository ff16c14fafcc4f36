/** A model added at run time, as stored: its catalog entry (JSON) and when it was added. */
export interface ModelRecord {
  name: string;
  entryJson: string;
  addedAtMs: number;
}

/** One change to the stored models, as watchers see it. */
export type ModelChange = { kind: "added"; record: ModelRecord } | { kind: "removed"; record: ModelRecord };

/**
 * Where added models live: SQLite on one machine (the auth database),
 * the NATS KV bucket `<p>_models` in cluster mode. `onChange` reports every
 * change any writer made (on NATS: every replica's), once.
 */
export interface ModelStore {
  list(): Promise<ModelRecord[]>;
  /** Stores `record`; false when a model of that name is stored already (nothing changes). */
  add(record: ModelRecord): Promise<boolean>;
  /** Forgets the model; the record that was stored, or undefined when there was none. */
  remove(name: string): Promise<ModelRecord | undefined>;
  onChange(listener: (change: ModelChange) => void): () => void;
  close(): Promise<void>;
}
