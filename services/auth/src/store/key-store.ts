import type { WatchKeyChangesResponse_Kind as ChangeKind } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { UsageEvent } from "../../../../src/gen/mesh/events/v1/events_pb.js";

/** A change to a key, pushed to watching edges. */
export interface KeyChange {
  kind: ChangeKind;
  keyId: string;
}

/** An account: keys and usage belong to one. */
export interface AccountRecord {
  id: string;
  name: string;
  retentionOptOut: boolean;
  createdAtMs: number;
}

/** A stored key: never the secret, only its hash. */
export interface KeyRecord {
  id: string;
  accountId: string;
  name: string;
  secretHash: string;
  /** After a rotation with grace: the old secret's hash, valid until `previousValidUntilMs`. */
  previousSecretHash: string | null;
  previousValidUntilMs: number;
  allowedModels: string[];
  requestsPerMinute: number;
  tokensPerMinute: number;
  /** Requests in flight at once (enforced per edge); 0 or absent (records from before it existed) = unlimited. */
  maxConcurrent?: number;
  createdAtMs: number;
  expiresAtMs: number;
  revokedAtMs: number;
  admin: boolean;
}

/** How a usage record's request ended, as the stores keep it (the event's string `status`). */
export type UsageStatusName = "ok" | "error" | "cancelled";

/**
 * One usage record; `requestId` is unique (recorded once). The stored form of events.proto's UsageEvent, derived
 * from it: the status as its name and the time as a number.
 */
export type UsageRecord = Omit<UsageEvent, "$typeName" | "$unknown" | "status" | "createdAtMs"> & { status: UsageStatusName; createdAtMs: number };

/** A request's content, kept for the retention period. */
export interface RequestLogRecord {
  requestId: string;
  accountId: string;
  requestJson: string;
  responseText: string;
  createdAtMs: number;
}

export interface UsageQuery {
  accountId?: string;
  fromMs?: number;
  toMs?: number;
  groupBy: "day" | "model" | "key";
  /** Also say when each group's latest request was made (`lastAtMs`). */
  withLastAt?: boolean;
}

export interface UsageAggregate {
  group: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Present when the query asked `withLastAt`. */
  lastAtMs?: number;
}

/**
 * Where auth keeps accounts, keys, usage and request logs. Adapters: SQLite
 * (embedded default); NATS JetStream KV for scale-out.
 */
export interface KeyStore {
  createAccount(account: AccountRecord): Promise<AccountRecord>;
  getAccount(id: string): Promise<AccountRecord | undefined>;
  listAccounts(): Promise<AccountRecord[]>;
  updateAccount(account: AccountRecord): Promise<void>;
  putKey(key: KeyRecord): Promise<void>;
  getKey(id: string): Promise<KeyRecord | undefined>;
  listKeys(accountId?: string): Promise<KeyRecord[]>;
  countKeys(): Promise<number>;
  /** False when a record with this request id exists already. */
  recordUsage(usage: UsageRecord): Promise<boolean>;
  queryUsage(query: UsageQuery): Promise<UsageAggregate[]>;
  putRequestLog(log: RequestLogRecord): Promise<void>;
  getRequestLog(requestId: string): Promise<RequestLogRecord | undefined>;
  /** Deletes request logs created before `beforeMs`; returns how many. */
  deleteRequestLogsBefore(beforeMs: number): Promise<number>;
  /** Per account, when its oldest stored request log was created (accounts with none are absent). */
  oldestRequestLogs(): Promise<Map<string, number>>;
  close(): Promise<void>;
}
