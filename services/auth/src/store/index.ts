export type {
  AccountRecord,
  KeyRecord,
  KeyStore,
  RequestLogRecord,
  UsageAggregate,
  UsageQuery,
  UsageRecord,
  UsageStatusName,
  KeyChange,
} from "./key-store.js";
export { SqliteKeyStore } from "./sqlite-key-store.js";
export { NatsKeyStore } from "./nats-key-store.js";
export type { NatsKeyStoreOptions } from "./nats-key-store.js";
export { openKeyStore, NATS_OUTBOX_FILE } from "./open-key-store.js";
export type { KeyStoreSettings, OpenedKeyStore } from "./open-key-store.js";
export type { ModelChange, ModelRecord, ModelStore } from "./model-store.js";
export { SqliteModelStore } from "./sqlite-model-store.js";
export { NatsModelStore } from "./nats-model-store.js";
export { openModelStore } from "./open-model-store.js";
