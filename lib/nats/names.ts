/**
 * Every name the mesh uses on NATS, in one place: streams, KV buckets and
 * subjects. A prefix ("mesh" in production) lets tests and several meshes
 * share one NATS server without their streams' subjects overlapping.
 */

/** Characters kept as they are in a subject token or KV key; the rest are escaped. */
const SAFE_TOKEN = /^[A-Za-z0-9_-]$/;

/**
 * Encodes any string as one NATS subject token that is also a valid KV key
 * segment: `[A-Za-z0-9_-]` stay, every other UTF-8 byte becomes `=XX`, and the
 * empty string is `=`. Injective, and readable for ordinary ids.
 */
export function subjectToken(value: string): string {
  if (value === "") return "=";
  let out = "";
  for (const ch of value) {
    if (SAFE_TOKEN.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, "utf8")) out += `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Reverses {@link subjectToken}. */
export function fromSubjectToken(token: string): string {
  if (token === "=") return "";
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "=") {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The streams, buckets and subjects of one mesh on NATS. */
export interface MeshNatsNames {
  prefix: string;
  /** KV bucket of auth state: `account.<id>` and `key.<id>` entries (JSON). */
  authBucket: string;
  /** Stream of `mesh.events.v1.UsageEvent`, one subject per request. */
  usageStream: string;
  /** Stream of `mesh.events.v1.RequestLog` (request content), 30-day max age. */
  requestLogStream: string;
  /** All subjects of the usage stream. */
  usageSubjects: string;
  /** All subjects of the request-log stream. */
  requestLogSubjects: string;
  /** The usage subject of one request; `accountId` lets a query filter by account. */
  usageSubject(accountId: string, requestId: string): string;
  /** The usage subjects of one account (a wildcard filter). */
  accountUsageSubjects(accountId: string): string;
  /** The request-log subject of one request. */
  requestLogSubject(requestId: string): string;
  /** The KV key of an account. */
  accountKey(accountId: string): string;
  /** The KV key of an API key record. */
  apiKeyKey(keyId: string): string;
  /** Core subject a shard heartbeats its announcement on (JSON `ShardAnnouncement`), one per shard id. */
  shardAnnounceSubject(shardId: string): string;
  /** Every shard's announcements (a wildcard filter). */
  shardAnnounceSubjects: string;
  /** Core subject a router publishes on to have every shard announce itself at once. */
  shardProbeSubject: string;
  /** KV bucket of the experiments' config: one key, `config`, the whole list (JSON). */
  experimentsBucket: string;
  /** KV bucket of per-router experiment statistics: `<experiment>.<router id>` (JSON snapshots). */
  experimentStatsBucket: string;
  /** KV bucket of the models added at run time: `model.<name>` (JSON records). */
  modelsBucket: string;
  /** The models bucket's key of one model. */
  modelKey(name: string): string;
}

const NAME_PREFIX = /^[a-z][a-z0-9_]{0,31}$/;

/** Names under `prefix` (lowercase letters, digits, `_`); "mesh" is the production prefix. */
export function meshNatsNames(prefix = "mesh"): MeshNatsNames {
  if (!NAME_PREFIX.test(prefix)) throw new RangeError(`NATS name prefix must match ${NAME_PREFIX.source}: ${JSON.stringify(prefix)}`);
  const upper = prefix.toUpperCase();
  return {
    prefix,
    authBucket: `${prefix}_auth`,
    usageStream: `${upper}_USAGE`,
    requestLogStream: `${upper}_REQUEST_LOGS`,
    usageSubjects: `${prefix}.events.v1.usage.>`,
    requestLogSubjects: `${prefix}.events.v1.request_log.>`,
    usageSubject: (accountId, requestId) => `${prefix}.events.v1.usage.${subjectToken(accountId)}.${subjectToken(requestId)}`,
    accountUsageSubjects: (accountId) => `${prefix}.events.v1.usage.${subjectToken(accountId)}.*`,
    requestLogSubject: (requestId) => `${prefix}.events.v1.request_log.${subjectToken(requestId)}`,
    accountKey: (accountId) => `account.${subjectToken(accountId)}`,
    apiKeyKey: (keyId) => `key.${subjectToken(keyId)}`,
    shardAnnounceSubject: (shardId) => `${prefix}.shards.v1.announce.${subjectToken(shardId)}`,
    shardAnnounceSubjects: `${prefix}.shards.v1.announce.*`,
    shardProbeSubject: `${prefix}.shards.v1.probe`,
    experimentsBucket: `${prefix}_experiments`,
    experimentStatsBucket: `${prefix}_experiment_stats`,
    modelsBucket: `${prefix}_models`,
    modelKey: (name) => `model.${subjectToken(name)}`,
  };
}
