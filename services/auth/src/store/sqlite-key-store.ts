import Database from "libsql";
import type { AccountRecord, KeyRecord, KeyStore, RequestLogRecord, UsageAggregate, UsageQuery, UsageRecord } from "./key-store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, retention_opt_out INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
  secret_hash TEXT NOT NULL, previous_secret_hash TEXT, previous_valid_until_ms INTEGER NOT NULL DEFAULT 0,
  allowed_models TEXT NOT NULL DEFAULT '[]', requests_per_minute INTEGER NOT NULL DEFAULT 0,
  tokens_per_minute INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL DEFAULT 0,
  revoked_at_ms INTEGER NOT NULL DEFAULT 0, admin INTEGER NOT NULL DEFAULT 0, max_concurrent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS usage (
  request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, account_id TEXT NOT NULL, model TEXT NOT NULL, backend TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, status TEXT NOT NULL,
  ttft_ms REAL NOT NULL, e2e_ms REAL NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS usage_by_account_time ON usage(account_id, created_at_ms);
CREATE TABLE IF NOT EXISTS request_logs (
  request_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, request_json TEXT NOT NULL, response_text TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS request_logs_by_time ON request_logs(created_at_ms);
`;

type Row = Record<string, unknown>;

function toKey(row: Row): KeyRecord {
  return {
    id: row.id as string,
    accountId: row.account_id as string,
    name: row.name as string,
    secretHash: row.secret_hash as string,
    previousSecretHash: (row.previous_secret_hash as string | null) ?? null,
    previousValidUntilMs: Number(row.previous_valid_until_ms),
    allowedModels: JSON.parse(row.allowed_models as string) as string[],
    requestsPerMinute: Number(row.requests_per_minute),
    tokensPerMinute: Number(row.tokens_per_minute),
    maxConcurrent: Number(row.max_concurrent ?? 0),
    createdAtMs: Number(row.created_at_ms),
    expiresAtMs: Number(row.expires_at_ms),
    revokedAtMs: Number(row.revoked_at_ms),
    admin: Boolean(row.admin),
  };
}

function toAccount(row: Row): AccountRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    retentionOptOut: Boolean(row.retention_opt_out),
    createdAtMs: Number(row.created_at_ms),
  };
}

const GROUP_EXPRESSIONS: Record<UsageQuery["groupBy"], string> = {
  day: "strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')",
  model: "model",
  key: "key_id",
};

const STATEMENTS = {
  createAccount: "INSERT INTO accounts (id, name, retention_opt_out, created_at_ms) VALUES (?, ?, ?, ?)",
  getAccount: "SELECT * FROM accounts WHERE id = ?",
  listAccounts: "SELECT * FROM accounts ORDER BY created_at_ms",
  updateAccount: "UPDATE accounts SET name = ?, retention_opt_out = ? WHERE id = ?",
  putKey: `INSERT OR REPLACE INTO api_keys (id, account_id, name, secret_hash, previous_secret_hash, previous_valid_until_ms,
      allowed_models, requests_per_minute, tokens_per_minute, created_at_ms, expires_at_ms, revoked_at_ms, admin, max_concurrent)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  getKey: "SELECT * FROM api_keys WHERE id = ?",
  listKeys: "SELECT * FROM api_keys ORDER BY created_at_ms",
  listAccountKeys: "SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at_ms",
  countKeys: "SELECT count(*) AS n FROM api_keys",
  recordUsage: `INSERT OR IGNORE INTO usage (request_id, key_id, account_id, model, backend, prompt_tokens, completion_tokens,
      status, ttft_ms, e2e_ms, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  putRequestLog: "INSERT OR IGNORE INTO request_logs (request_id, account_id, request_json, response_text, created_at_ms) VALUES (?, ?, ?, ?, ?)",
  getRequestLog: "SELECT * FROM request_logs WHERE request_id = ?",
  deleteRequestLogsBefore: "DELETE FROM request_logs WHERE created_at_ms < ?",
  oldestRequestLogs: "SELECT account_id, MIN(created_at_ms) AS oldest FROM request_logs GROUP BY account_id",
};
type Statements = Record<keyof typeof STATEMENTS, Database.Statement>;

/** The embedded store: one SQLite file in the data dir (WAL mode). */
export class SqliteKeyStore implements KeyStore {
  readonly #db: Database.Database;
  /** The fixed statements, compiled once: `getKey` and `recordUsage` run on every request. */
  readonly #sql: Statements;

  constructor(path: string) {
    this.#db = new Database(path);
    // WAL with synchronous=NORMAL: no fsync per commit (libsql is synchronous, so an fsync would
    // stall auth's event loop for milliseconds on every usage record); still crash-safe, and a power
    // loss can only drop the last commits.
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
    this.#db.exec(SCHEMA);
    // A database from before per-key concurrency limits: add the column (existing keys stay unlimited).
    const columns = this.#db.prepare("PRAGMA table_info(api_keys)").all() as Row[];
    if (!columns.some((c) => c.name === "max_concurrent")) this.#db.exec("ALTER TABLE api_keys ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0");
    const db = this.#db;
    this.#sql = Object.fromEntries(Object.entries(STATEMENTS).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;
  }

  async createAccount(account: AccountRecord): Promise<AccountRecord> {
    this.#sql.createAccount.run(account.id, account.name, account.retentionOptOut ? 1 : 0, account.createdAtMs);
    return account;
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const row = this.#sql.getAccount.get(id) as Row | undefined;
    return row ? toAccount(row) : undefined;
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return (this.#sql.listAccounts.all() as Row[]).map(toAccount);
  }

  async updateAccount(account: AccountRecord): Promise<void> {
    this.#sql.updateAccount.run(account.name, account.retentionOptOut ? 1 : 0, account.id);
  }

  async putKey(key: KeyRecord): Promise<void> {
    this.#sql.putKey.run(
      key.id,
      key.accountId,
      key.name,
      key.secretHash,
      key.previousSecretHash,
      key.previousValidUntilMs,
      JSON.stringify(key.allowedModels),
      key.requestsPerMinute,
      key.tokensPerMinute,
      key.createdAtMs,
      key.expiresAtMs,
      key.revokedAtMs,
      key.admin ? 1 : 0,
      key.maxConcurrent ?? 0,
    );
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const row = this.#sql.getKey.get(id) as Row | undefined;
    return row ? toKey(row) : undefined;
  }

  async listKeys(accountId?: string): Promise<KeyRecord[]> {
    const rows = accountId ? this.#sql.listAccountKeys.all(accountId) : this.#sql.listKeys.all();
    return (rows as Row[]).map(toKey);
  }

  async countKeys(): Promise<number> {
    return Number((this.#sql.countKeys.get() as Row).n);
  }

  async recordUsage(u: UsageRecord): Promise<boolean> {
    const result = this.#sql.recordUsage.run(
      u.requestId,
      u.keyId,
      u.accountId,
      u.model,
      u.backend,
      u.promptTokens,
      u.completionTokens,
      u.status,
      u.ttftMs,
      u.e2eMs,
      u.createdAtMs,
    );
    return result.changes > 0;
  }

  async queryUsage(query: UsageQuery): Promise<UsageAggregate[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (query.accountId) {
      where.push("account_id = ?");
      args.push(query.accountId);
    }
    if (query.fromMs) {
      where.push("created_at_ms >= ?");
      args.push(query.fromMs);
    }
    if (query.toMs) {
      where.push("created_at_ms < ?");
      args.push(query.toMs);
    }
    const group = GROUP_EXPRESSIONS[query.groupBy];
    const sql = `SELECT ${group} AS grp, count(*) AS requests, sum(prompt_tokens) AS prompt_tokens,
      sum(completion_tokens) AS completion_tokens, max(created_at_ms) AS last_at_ms FROM usage ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      GROUP BY grp ORDER BY grp`;
    return (this.#db.prepare(sql).all(...args) as Row[]).map((row) => ({
      group: String(row.grp),
      requests: Number(row.requests),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      ...(query.withLastAt ? { lastAtMs: Number(row.last_at_ms) } : {}),
    }));
  }

  async putRequestLog(log: RequestLogRecord): Promise<void> {
    this.#sql.putRequestLog.run(log.requestId, log.accountId, log.requestJson, log.responseText, log.createdAtMs);
  }

  async getRequestLog(requestId: string): Promise<RequestLogRecord | undefined> {
    const row = this.#sql.getRequestLog.get(requestId) as Row | undefined;
    if (!row) return undefined;
    return {
      requestId: row.request_id as string,
      accountId: row.account_id as string,
      requestJson: row.request_json as string,
      responseText: row.response_text as string,
      createdAtMs: Number(row.created_at_ms),
    };
  }

  async deleteRequestLogsBefore(beforeMs: number): Promise<number> {
    return this.#sql.deleteRequestLogsBefore.run(beforeMs).changes;
  }

  async oldestRequestLogs(): Promise<Map<string, number>> {
    const rows = this.#sql.oldestRequestLogs.all() as { account_id: string; oldest: number }[];
    return new Map(rows.map((r) => [r.account_id, Number(r.oldest)]));
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
