import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_ACCOUNT_ID, ensureFirstKey, FIRST_KEY_FILE } from "./bootstrap.js";
import { SqliteKeyStore } from "./store/index.js";

describe("ensureFirstKey", () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-boot-"));
    dirs.push(dir);
    return { dir, store: new SqliteKeyStore(path.join(dir, "mesh.db")) };
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("creates one key on an empty store, writes it 0600, and none on the next start", async () => {
    const { dir, store } = fresh();
    expect(await ensureFirstKey(store, dir, undefined)).toBe(true);
    const file = path.join(dir, FIRST_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toMatch(/^sk-mesh-/);
    expect(await ensureFirstKey(store, dir, undefined)).toBe(false);
    expect(await store.countKeys()).toBe(1);
  });

  it("tolerates another replica creating the default account at the same moment", async () => {
    const { dir, store } = fresh();
    // The account appears between our check and our insert.
    let checks = 0;
    const racing = new Proxy(store, {
      get(target, prop) {
        if (prop === "getAccount") return async (id: string) => (checks++ === 0 ? undefined : target.getAccount(id));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await store.createAccount({ id: DEFAULT_ACCOUNT_ID, name: "other replica", retentionOptOut: false, createdAtMs: 1 });
    await expect(ensureFirstKey(racing, dir, "sk-test-0123456789abcdefghijklmnop")).resolves.toBe(false);
    expect((await store.getAccount(DEFAULT_ACCOUNT_ID))?.name).toBe("other replica");
  });
});
