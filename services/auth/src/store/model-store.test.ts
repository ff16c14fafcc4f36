import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { connectNats, meshNatsNames } from "../../../../lib/nats/index.js";
import { NatsServerProcess } from "../../../../lib/nats/nats-server-process.js";
import { describeModelStoreContract } from "./model-store.contract.js";
import { NatsModelStore } from "./nats-model-store.js";
import { SqliteModelStore } from "./sqlite-model-store.js";

describeModelStoreContract("sqlite", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "mesh-model-store-"));
  return { store: new SqliteModelStore(path.join(dir, "mesh.db")), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// Its own nats-server on a free port; every test gets a fresh bucket under a new prefix.
let nats: NatsServerProcess;
let dir: string;
let run = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "mesh-model-nats-"));
  nats = await NatsServerProcess.start({ dir });
});
afterAll(async () => {
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describeModelStoreContract("nats", async () => {
  const names = meshNatsNames(`m${++run}`);
  const replica = async () => NatsModelStore.open(await connectNats({ url: nats.url, name: "contract" }), names, { ownsConnection: true });
  return { store: await replica(), second: replica };
});
