import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuthService } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { grpcClient } from "../../lib/rpc/index.js";
import { ConfigError, createLogger } from "../../lib/runtime/index.js";
import { ensureAdminToken, generateAdminToken } from "../../services/auth/src/admin-token.js";
import { build, DATABASE_FILE } from "../../services/auth/src/server.js";

const modeOf = (file: string): number => statSync(file).mode & 0o777;

describe("the data dir and its files are private to the mesh's user", () => {
  const roots: string[] = [];
  const root = (): string => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-modes-"));
    roots.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const log = createLogger("auth-test");
  log.level = "silent";
  const startAuth = (dataDir: string) => build({ port: 0, host: "127.0.0.1", dataDir, bootstrapApiKey: undefined, adminToken: generateAdminToken() }, log);

  it("creates the dir 0700 and mesh.db, its -wal and -shm, admin-token and first-api-key 0600", async () => {
    const dataDir = path.join(root(), "nested", "data");
    const auth = await startAuth(dataDir);
    try {
      await ensureAdminToken(dataDir);
      // A write so SQLite has a WAL and its shared-memory index.
      await grpcClient(AuthService, `127.0.0.1:${auth.port}`)
        .recordUsage({ requestId: "r1", keyId: "k", accountId: "default", model: "m" })
        .catch(() => undefined);
      expect(modeOf(dataDir)).toBe(0o700);
      for (const file of [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`, "admin-token", "first-api-key"]) {
        expect(modeOf(path.join(dataDir, file)), file).toBe(0o600);
      }
    } finally {
      await auth.close(200);
    }
  });

  it("tightens a dir and files an older version left readable by everyone", async () => {
    const dataDir = path.join(root(), "old");
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(path.join(dataDir, DATABASE_FILE), "");
    chmodSync(path.join(dataDir, DATABASE_FILE), 0o644);
    const auth = await startAuth(dataDir);
    try {
      expect(modeOf(dataDir)).toBe(0o700);
      expect(modeOf(path.join(dataDir, DATABASE_FILE))).toBe(0o600);
    } finally {
      await auth.close(200);
    }
  });

  it("refuses to start on a dir that group or others can write, naming the dir and the fix", async () => {
    for (const mode of [0o777, 0o775, 0o1777]) {
      const dataDir = path.join(root(), `open-${mode.toString(8)}`);
      mkdirSync(dataDir);
      chmodSync(dataDir, mode);
      const started = startAuth(dataDir);
      await expect(started).rejects.toBeInstanceOf(ConfigError);
      await expect(started).rejects.toThrow(`chmod 700 ${dataDir}`);
    }
  });
});
