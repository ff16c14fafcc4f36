import * as path from "node:path";
import { connectNats, meshNatsNames } from "../../../../lib/nats/index.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { KeyChange } from "./key-store.js";
import type { KeyStore } from "./key-store.js";
import { NatsKeyStore } from "./nats-key-store.js";
import { SqliteKeyStore } from "./sqlite-key-store.js";

/** Where a NATS store saves usage it could not deliver before a shutdown. */
export const NATS_OUTBOX_FILE = "nats-outbox.json";

/** The store settings of auth's config; absent fields take the defaults (SQLite). */
export interface KeyStoreSettings {
  dataDir: string;
  store?: "sqlite" | "nats";
  natsUrl?: string;
  natsReplicas?: number;
  natsPrefix?: string;
}

export interface OpenedKeyStore {
  store: KeyStore;
  /**
   * Present when the store itself reports key changes made by any replica
   * (NATS KV watch). Auth then pushes changes to its edges from here only,
   * this replica's own changes included, so each is pushed once.
   */
  followChanges?: (publish: (change: KeyChange) => void) => () => void;
}

/** Opens the store `settings.store` names: SQLite in `sqliteFile`, or NATS JetStream. */
export async function openKeyStore(settings: KeyStoreSettings, log: Logger, sqliteFile: string): Promise<OpenedKeyStore> {
  if ((settings.store ?? "sqlite") === "sqlite") return { store: new SqliteKeyStore(sqliteFile) };
  const replicas = settings.natsReplicas ?? 1;
  const nc = await connectNats({ url: settings.natsUrl ?? "nats://127.0.0.1:4222", name: "mesh-auth", log });
  const store = await NatsKeyStore.open({
    nc,
    names: meshNatsNames(settings.natsPrefix ?? "mesh"),
    replicas,
    log,
    spillFile: path.join(settings.dataDir, NATS_OUTBOX_FILE),
    ownsConnection: true,
  });
  log.info({ servers: nc.getServer(), replicas }, "key store: NATS JetStream");
  return { store, followChanges: (publish) => store.onKeyChange(publish) };
}
