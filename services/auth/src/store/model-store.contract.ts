import { afterEach, describe, expect, it } from "vitest";
import type { ModelChange, ModelRecord, ModelStore } from "./model-store.js";

/** A fresh, empty store per test; `second` opens another replica on the same state where the adapter has replicas. */
export type ModelStoreFactory = () => Promise<{ store: ModelStore; second?: () => Promise<ModelStore>; cleanup?: () => Promise<void> }>;

function record(name: string, addedAtMs = Date.now()): ModelRecord {
  return { name, entryJson: JSON.stringify({ name, backends: [{ name: "local", engine: "llama.cpp", model: `/m/${name}.gguf` }] }), addedAtMs };
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("not in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The behaviour every ModelStore adapter (SQLite, NATS) shares. */
export function describeModelStoreContract(name: string, open: ModelStoreFactory): void {
  describe(`model store contract: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });
    async function fresh() {
      const opened = await open();
      cleanups.push(async () => {
        await opened.store.close();
        await opened.cleanup?.();
      });
      return opened;
    }

    it("adds once per name, lists in the order added, and removes", async () => {
      const { store } = await fresh();
      expect(await store.list()).toEqual([]);
      expect(await store.add(record("a", 1))).toBe(true);
      expect(await store.add(record("b/c:1", 2))).toBe(true);
      expect(await store.add(record("a", 3))).toBe(false);
      expect((await store.list()).map((m) => [m.name, m.addedAtMs])).toEqual([
        ["a", 1],
        ["b/c:1", 2],
      ]);
      expect((await store.remove("a"))?.name).toBe("a");
      expect(await store.remove("a")).toBeUndefined();
      expect((await store.list()).map((m) => m.name)).toEqual(["b/c:1"]);
      // A removed name can be added again.
      expect(await store.add(record("a", 4))).toBe(true);
    });

    it("reports each change once, with the record", async () => {
      const { store } = await fresh();
      const changes: ModelChange[] = [];
      const stop = store.onChange((c) => changes.push(c));
      await store.add(record("x", 5));
      await store.remove("x");
      await until(() => changes.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      stop();
      expect(changes.map((c) => [c.kind, c.record.name, c.record.addedAtMs])).toEqual([
        ["added", "x", 5],
        ["removed", "x", 5],
      ]);
    });

    it("shows one replica's changes to another", async () => {
      const { store, second } = await fresh();
      if (!second) return; // One process owns the state (SQLite): there is no other replica.
      const other = await second();
      cleanups.push(() => other.close());
      const seen: ModelChange[] = [];
      other.onChange((c) => seen.push(c));
      await store.add(record("shared", 6));
      await until(() => seen.length === 1);
      expect((await other.list()).map((m) => m.name)).toEqual(["shared"]);
      expect(await other.add(record("shared", 7))).toBe(false);
      await other.remove("shared");
      const deadline = Date.now() + 5_000;
      while ((await store.list()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await store.list()).toEqual([]);
    });
  });
}
