import { connectNats, meshNatsNames } from "../../../../lib/nats/index.js";
import type { Logger } from "../../../../lib/runtime/index.js";
import type { ModelStore } from "./model-store.js";
import { NatsModelStore } from "./nats-model-store.js";
import type { KeyStoreSettings } from "./open-key-store.js";
import { SqliteModelStore } from "./sqlite-model-store.js";

/** Opens the model store beside the key store: the same SQLite file, or the NATS bucket `<p>_models`. */
export async function openModelStore(settings: KeyStoreSettings, log: Logger, sqliteFile: string): Promise<ModelStore> {
  if ((settings.store ?? "sqlite") === "sqlite") return new SqliteModelStore(sqliteFile);
  const nc = await connectNats({ url: settings.natsUrl ?? "nats://127.0.0.1:4222", name: "mesh-auth-models", log });
  return NatsModelStore.open(nc, meshNatsNames(settings.natsPrefix ?? "mesh"), { replicas: settings.natsReplicas, log, ownsConnection: true });
}
