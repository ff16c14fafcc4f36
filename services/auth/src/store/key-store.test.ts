import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { connectNats, meshNatsNames } from "../../../../lib/nats/index.js";
import { NatsServerProcess } from "../../../../lib/nats/nats-server-process.js";
import { describeKeyStoreContract } from "./key-store.contract.js";
import { NatsKeyStore } from "./nats-key-store.js";
import { SqliteKeyStore } from "./sqlite-key-store.js";

describeKeyStoreContract("sqlite", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "mesh-store-"));
  return { store: new SqliteKeyStore(path.join(dir, "mesh.db")), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// Its own nats-server on a free port; every test gets a fresh bucket and streams under a new prefix.
let nats: NatsServerProcess;
let dir: string;
let run = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "mesh-nats-"));
  nats = await NatsServerProcess.start({ dir });
});
afterAll(async () => {
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describeKeyStoreContract("nats", async () => {
  const nc = await connectNats({ url: nats.url, name: "contract" });
  const store = await NatsKeyStore.open({ nc, names: meshNatsNames(`c${++run}`), ownsConnection: true });
  return { store };
});
