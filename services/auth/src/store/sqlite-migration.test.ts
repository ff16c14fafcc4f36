import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import Database from "libsql";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteKeyStore } from "./sqlite-key-store.js";

describe("SQLite key store on a database from before per-key concurrency limits", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("adds max_concurrent (existing keys unlimited) and stores it from then on", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-migrate-"));
    dirs.push(dir);
    const file = path.join(dir, "mesh.db");
    const old = new Database(file);
    old.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, retention_opt_out INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL);
      CREATE TABLE api_keys (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
        secret_hash TEXT NOT NULL, previous_secret_hash TEXT, previous_valid_until_ms INTEGER NOT NULL DEFAULT 0,
        allowed_models TEXT NOT NULL DEFAULT '[]', requests_per_minute INTEGER NOT NULL DEFAULT 0,
        tokens_per_minute INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL DEFAULT 0,
        revoked_at_ms INTEGER NOT NULL DEFAULT 0, admin INTEGER NOT NULL DEFAULT 0);
      INSERT INTO accounts VALUES ('default', 'Default', 0, 1);
      INSERT INTO api_keys (id, account_id, name, secret_hash, created_at_ms) VALUES ('old', 'default', 'old key', 'h', 1);`);
    old.close();
    const store = new SqliteKeyStore(file);
    const key = await store.getKey("old");
    expect(key?.maxConcurrent).toBe(0);
    await store.putKey({ ...key!, maxConcurrent: 4 });
    expect((await store.getKey("old"))?.maxConcurrent).toBe(4);
    await store.close();
  });
});
