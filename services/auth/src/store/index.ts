export type {
  AccountRecord,
  KeyRecord,
  KeyStore,
  RequestLogRecord,
  UsageAggregate,
  UsageQuery,
  UsageRecord,
} from "./key-store.js";
export { SqliteKeyStore } from "./sqlite-key-store.js";
