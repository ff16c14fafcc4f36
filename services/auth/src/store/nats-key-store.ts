import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { RequestLogSchema, UsageEventSchema } from "../../../../src/gen/mesh/events/v1/events_pb.js";
import { WatchKeyChangesResponse_Kind as ChangeKind } from "../../../../src/gen/mesh/auth/v1/auth_pb.js";
import { Code, ConnectError, meshError } from "../../../../lib/errors.js";
import { JetStreamOutbox, meshNatsNames, retryTransient, scanStream } from "../../../../lib/nats/index.js";
import type { MeshNatsNames } from "../../../../lib/nats/index.js";
import { KvMirror } from "../../../../lib/nats/kv-mirror.js";
import type { MirrorChange } from "../../../../lib/nats/kv-mirror.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { KeyChange } from "./key-store.js";
import type { AccountRecord, KeyRecord, KeyStore, RequestLogRecord, UsageAggregate, UsageQuery, UsageRecord } from "./key-store.js";

/** Request content is kept this long, then NATS drops it (the stream's max age). */
export const REQUEST_LOG_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;
/** How long the streams remember a `Nats-Msg-Id`: covers replays after an outage this long. */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 60 * 1000;
/** Clock skew allowed between the recorder and NATS when a query starts at a stream time. */
export const CLOCK_SKEW_MS = 60 * 60 * 1000;
/** How long a write waits to see itself in the local mirror. */
const WRITE_VISIBLE_TIMEOUT_MS = 5_000;
const NS_PER_MS = 1_000_000;
/** One JetStream API call's wait; retries (across a failover) wrap it. */
const JS_CALL_TIMEOUT_MS = 2_000;
/** A read that misses the mirror waits this long for NATS, less than a write: it is on the request path. */
const READ_RETRY_BUDGET_MS = 3_000;
/** Header with a request log's creation time, so the sweeper scans headers only. */
const CREATED_AT_HEADER = "Mesh-Created-At-Ms";
/** The account of a request log, so scans by account read headers only. */
const ACCOUNT_HEADER = "Mesh-Account";

export interface NatsKeyStoreOptions {
  nc: NatsConnection;
  /** Names of the bucket and streams; `meshNatsNames()` in production, a unique prefix in tests. */
  names?: MeshNatsNames;
  /** JetStream replicas of the bucket and streams (3 in a 3-node cluster). */
  replicas?: number;
  log?: Logger;
  /** Saved outbox of usage and request logs, for a restart during a NATS outage. */
  spillFile?: string;
  publishTimeoutMs?: number;
  replayIntervalMs?: number;
  /** Close the connection on `close()`. */
  ownsConnection?: boolean;
}

function unavailable(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return meshError(Code.Unavailable, `key store (NATS) unavailable: ${(err as Error).message}`, { cause: err });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const toJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
const fromJson = <T>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T;
const byCreation = (a: { createdAtMs: number }, b: { createdAtMs: number }): number => a.createdAtMs - b.createdAtMs;

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The scale-out store on NATS JetStream: accounts and keys in a KV bucket
 * (mirrored in memory by a watch, so reads cost no round trip and keep working
 * while NATS is away, and every replica sees every change), usage events and
 * request logs in streams. Writes to the streams go through an outbox that
 * buffers during an outage and replays with `Nats-Msg-Id` de-duplication.
 */
export class NatsKeyStore implements KeyStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly mirror: KvMirror,
    private readonly outbox: JetStreamOutbox,
    readonly names: MeshNatsNames,
    private readonly options: NatsKeyStoreOptions,
  ) {}

  /** Creates (or updates) the bucket and streams, then syncs the mirror. */
  static async open(options: NatsKeyStoreOptions): Promise<NatsKeyStore> {
    const names = options.names ?? meshNatsNames();
    const replicas = options.replicas ?? 1;
    const { nc } = options;
    const jsm = await jetstreamManager(nc, { timeout: JS_CALL_TIMEOUT_MS });
    const js = jetstream(nc, { timeout: JS_CALL_TIMEOUT_MS });
    const common: Partial<StreamConfig> = {
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      duplicate_window: DUPLICATE_WINDOW_MS * NS_PER_MS,
    };
    await ensureStream(jsm, {
      ...common,
      name: names.usageStream,
      subjects: [names.usageSubjects],
      description: "mesh.events.v1.UsageEvent, one subject per request",
    });
    await ensureStream(jsm, {
      ...common,
      name: names.requestLogStream,
      subjects: [names.requestLogSubjects],
      max_age: REQUEST_LOG_MAX_AGE_MS * NS_PER_MS,
      description: "mesh.events.v1.RequestLog: request content, kept 30 days, never written for opted-out accounts",
    });
    const kv = await new Kvm(js).create(names.authBucket, {
      history: 1,
      replicas,
      storage: StorageType.File,
      description: "mesh auth: accounts and API keys (hashed)",
    });
    const mirror = await KvMirror.open(kv, { log: options.log });
    const outbox = new JetStreamOutbox(nc, js, {
      log: options.log,
      spillFile: options.spillFile,
      publishTimeoutMs: options.publishTimeoutMs,
      replayIntervalMs: options.replayIntervalMs,
    });
    await outbox.restore();
    return new NatsKeyStore(nc, js, jsm, kv, mirror, outbox, names, options);
  }

  /** Usage records and request logs waiting for NATS. */
  get buffered(): number {
    return this.outbox.pending;
  }

  /** Sends what is buffered now (also happens by itself on reconnect and on a timer). */
  replay(): Promise<void> {
    return this.outbox.replay();
  }

  /**
   * Calls `listener` for every key change any replica makes: revocation,
   * rotation, and updates (including an account's retention choice, as an
   * update of each of its keys). Returns the unsubscribe function.
   */
  onKeyChange(listener: (change: KeyChange) => void): () => void {
    return this.mirror.onChange((change) => {
      for (const keyChange of this.#keyChanges(change)) listener(keyChange);
    });
  }

  #keyChanges(change: MirrorChange): KeyChange[] {
    if (!change.previous) return [];
    if (change.key.startsWith("key.")) {
      const before = fromJson<KeyRecord>(change.previous);
      if (!change.value) return [{ kind: ChangeKind.REVOKED, keyId: before.id }];
      const after = fromJson<KeyRecord>(change.value);
      if (after.revokedAtMs > 0) return before.revokedAtMs > 0 ? [] : [{ kind: ChangeKind.REVOKED, keyId: after.id }];
      if (after.secretHash !== before.secretHash) return [{ kind: ChangeKind.ROTATED, keyId: after.id }];
      return [{ kind: ChangeKind.UPDATED, keyId: after.id }];
    }
    if (change.key.startsWith("account.")) {
      const accountId = fromJson<AccountRecord>(change.previous).id;
      return this.#keys(accountId).map((k) => ({ kind: ChangeKind.UPDATED, keyId: k.id }));
    }
    return [];
  }

  async createAccount(account: AccountRecord): Promise<AccountRecord> {
    let revision: number;
    try {
      revision = await retryTransient(() => this.kv.create(this.names.accountKey(account.id), toJson(account)));
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10071) throw meshError(Code.AlreadyExists, `account ${account.id} exists already`, { param: "id" });
      throw unavailable(err);
    }
    await this.mirror.waitFor(revision, WRITE_VISIBLE_TIMEOUT_MS);
    return account;
  }

  async getAccount(id: string): Promise<AccountRecord | undefined> {
    return this.#read<AccountRecord>(this.names.accountKey(id));
  }

  async listAccounts(): Promise<AccountRecord[]> {
    return [...this.mirror.entries("account.")].map(([, v]) => fromJson<AccountRecord>(v)).sort(byCreation);
  }

  async updateAccount(account: AccountRecord): Promise<void> {
    const current = await this.getAccount(account.id);
    if (!current) return;
    await this.#write(this.names.accountKey(account.id), { ...current, name: account.name, retentionOptOut: account.retentionOptOut });
  }

  async putKey(key: KeyRecord): Promise<void> {
    await this.#write(this.names.apiKeyKey(key.id), key);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    return this.#read<KeyRecord>(this.names.apiKeyKey(id));
  }

  async listKeys(accountId?: string): Promise<KeyRecord[]> {
    return this.#keys(accountId);
  }

  async countKeys(): Promise<number> {
    return [...this.mirror.entries("key.")].length;
  }

  async recordUsage(u: UsageRecord): Promise<boolean> {
    const event = create(UsageEventSchema, { ...u, createdAtMs: BigInt(u.createdAtMs) });
    const result = await this.#publish(this.names.usageSubject(u.accountId, u.requestId), u.requestId, toBinary(UsageEventSchema, event));
    // Buffered counts as recorded: the replay stores it once (a copy that landed already is dropped).
    return result !== "duplicate";
  }

  async queryUsage(query: UsageQuery): Promise<UsageAggregate[]> {
    const groups = new Map<string, UsageAggregate>();
    // Also makes a scan restarted after a failover count each request once.
    const seen = new Set<string>();
    try {
      await retryTransient(() =>
        scanStream(
          this.js,
          this.names.usageStream,
          {
            filter: query.accountId ? this.names.accountUsageSubjects(query.accountId) : this.names.usageSubjects,
            // Replayed events are stored after they happened, never before (up to clock skew).
            startTimeMs: query.fromMs ? query.fromMs - CLOCK_SKEW_MS : undefined,
          },
          (msg) => {
            const e = fromBinary(UsageEventSchema, msg.data);
            const at = Number(e.createdAtMs);
            if ((query.fromMs && at < query.fromMs) || (query.toMs && at >= query.toMs) || seen.has(e.requestId)) return;
            seen.add(e.requestId);
            const group = query.groupBy === "day" ? dayOf(at) : query.groupBy === "model" ? e.model : e.keyId;
            const row = groups.get(group) ?? { group, requests: 0, promptTokens: 0, completionTokens: 0, ...(query.withLastAt ? { lastAtMs: at } : {}) };
            if (row.lastAtMs !== undefined && at > row.lastAtMs) row.lastAtMs = at;
            row.requests++;
            row.promptTokens += e.promptTokens;
            row.completionTokens += e.completionTokens;
            groups.set(group, row);
          },
        ),
      );
    } catch (err) {
      throw unavailable(err);
    }
    return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  async putRequestLog(log: RequestLogRecord): Promise<void> {
    const event = create(RequestLogSchema, { ...log, createdAtMs: BigInt(log.createdAtMs) });
    await this.#publish(this.names.requestLogSubject(log.requestId), log.requestId, toBinary(RequestLogSchema, event), {
      [CREATED_AT_HEADER]: String(log.createdAtMs),
      [ACCOUNT_HEADER]: log.accountId,
    });
  }

  async getRequestLog(requestId: string): Promise<RequestLogRecord | undefined> {
    let stored;
    try {
      stored = await retryTransient(() => this.jsm.streams.getMessage(this.names.requestLogStream, { last_by_subj: this.names.requestLogSubject(requestId) }));
    } catch (err) {
      throw unavailable(err);
    }
    if (!stored) return undefined;
    const log = fromBinary(RequestLogSchema, stored.data);
    return {
      requestId: log.requestId,
      accountId: log.accountId,
      requestJson: log.requestJson,
      responseText: log.responseText,
      createdAtMs: Number(log.createdAtMs),
    };
  }

  /**
   * The stream's max age drops request logs 30 days after NATS stored them;
   * this serves the sweeper, which goes by creation time (a log replayed after
   * an outage is stored later than it was created). It reads headers only.
   */
  async deleteRequestLogsBefore(beforeMs: number): Promise<number> {
    const doomed = new Set<number>();
    try {
      await retryTransient(() =>
        scanStream(this.js, this.names.requestLogStream, { headersOnly: true }, (msg) => {
          if (Number(msg.headers?.get(CREATED_AT_HEADER)) < beforeMs) doomed.add(msg.seq);
        }),
      );
      for (const seq of doomed) await retryTransient(() => this.jsm.streams.deleteMessage(this.names.requestLogStream, seq, false));
    } catch (err) {
      throw unavailable(err);
    }
    return doomed.size;
  }

  /** One headers-only scan of the request-log stream. */
  async oldestRequestLogs(): Promise<Map<string, number>> {
    const oldest = new Map<string, number>();
    try {
      await retryTransient(() => {
        oldest.clear();
        return scanStream(this.js, this.names.requestLogStream, { headersOnly: true }, (msg) => {
          const account = msg.headers?.get(ACCOUNT_HEADER);
          const at = Number(msg.headers?.get(CREATED_AT_HEADER));
          if (account && Number.isFinite(at) && at < (oldest.get(account) ?? Infinity)) oldest.set(account, at);
        });
      });
    } catch (err) {
      throw unavailable(err);
    }
    return oldest;
  }

  async close(): Promise<void> {
    this.mirror.stop();
    await this.outbox.close();
    if (this.options.ownsConnection) await this.nc.drain().catch(() => this.nc.close());
  }

  #keys(accountId?: string): KeyRecord[] {
    const keys = [...this.mirror.entries("key.")].map(([, v]) => fromJson<KeyRecord>(v));
    return (accountId === undefined ? keys : keys.filter((k) => k.accountId === accountId)).sort(byCreation);
  }

  /** The mirror first; on a miss (a write on another replica a moment ago) the bucket itself. */
  async #read<T>(key: string): Promise<T | undefined> {
    const local = this.mirror.get(key);
    if (local) return fromJson<T>(local);
    try {
      const entry = await retryTransient(() => this.kv.get(key), READ_RETRY_BUDGET_MS);
      return entry && entry.operation === "PUT" ? fromJson<T>(entry.value) : undefined;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async #write(key: string, value: unknown): Promise<void> {
    let revision: number;
    try {
      revision = await retryTransient(() => this.kv.put(key, toJson(value)));
    } catch (err) {
      throw unavailable(err);
    }
    // Read-your-writes, and the change reaches listeners (edges' watches) before the caller's answer.
    await this.mirror.waitFor(revision, WRITE_VISIBLE_TIMEOUT_MS);
  }

  async #publish(subject: string, msgId: string, data: Uint8Array, headers?: Record<string, string>) {
    try {
      return await this.outbox.publish({ subject, msgId, data, firstOnSubject: true, headers });
    } catch (err) {
      throw meshError(Code.Internal, `NATS refused the message: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Adds a stream, or brings an existing one to this config (replicas, limits). */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059) {
      await jsm.streams.add(config);
      return;
    }
    throw err;
  }
  await jsm.streams.update(config.name, config);
}
