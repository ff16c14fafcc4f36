import { EventEmitter } from "node:events";
import Database from "libsql";
import type { ModelChange, ModelRecord, ModelStore } from "./model-store.js";

const SCHEMA = "CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, entry_json TEXT NOT NULL, added_at_ms INTEGER NOT NULL)";

type Row = { name: string; entry_json: string; added_at_ms: number | bigint };

function toRecord(row: Row): ModelRecord {
  return { name: row.name, entryJson: row.entry_json, addedAtMs: Number(row.added_at_ms) };
}

/**
 * Added models in the auth database (a `models` table beside the keys).
 * One auth process writes it, so that process's own writes are every change.
 */
export class SqliteModelStore implements ModelStore {
  readonly #db: Database.Database;
  readonly #changes = new EventEmitter();

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    this.#db.exec(SCHEMA);
  }

  async list(): Promise<ModelRecord[]> {
    return (this.#db.prepare("SELECT * FROM models ORDER BY added_at_ms, name").all() as Row[]).map(toRecord);
  }

  async add(record: ModelRecord): Promise<boolean> {
    const result = this.#db
      .prepare("INSERT OR IGNORE INTO models (name, entry_json, added_at_ms) VALUES (?, ?, ?)")
      .run(record.name, record.entryJson, record.addedAtMs);
    if (Number(result.changes) === 0) return false;
    this.#emit({ kind: "added", record });
    return true;
  }

  async remove(name: string): Promise<ModelRecord | undefined> {
    const row = this.#db.prepare("SELECT * FROM models WHERE name = ?").get(name) as Row | undefined;
    if (!row) return undefined;
    this.#db.prepare("DELETE FROM models WHERE name = ?").run(name);
    const record = toRecord(row);
    this.#emit({ kind: "removed", record });
    return record;
  }

  onChange(listener: (change: ModelChange) => void): () => void {
    this.#changes.on("change", listener);
    return () => this.#changes.off("change", listener);
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  #emit(change: ModelChange): void {
    this.#changes.emit("change", change);
  }
}
