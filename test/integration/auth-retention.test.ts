import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { RecordUsageRequestSchema, UsageStatus } from "../../src/gen/mesh/auth/v1/auth_pb.js";
import { AuthService } from "../../services/auth/src/auth-service.js";
import { RETENTION_MS, RetentionSweeper } from "../../services/auth/src/retention-sweeper.js";
import { SqliteKeyStore } from "../../services/auth/src/store/index.js";
import { testClock } from "./auth-fixtures.js";

const DAY_MS = 24 * 60 * 60 * 1000;

function usage(requestId: string, accountId: string, createdAtMs: number) {
  return create(RecordUsageRequestSchema, {
    requestId,
    keyId: "k",
    accountId,
    model: "m",
    backend: "b",
    promptTokens: 3,
    completionTokens: 2,
    status: UsageStatus.OK,
    createdAtMs: BigInt(createdAtMs),
    requestJson: JSON.stringify({ messages: [{ role: "user", content: "private words" }] }),
    responseText: "private answer",
  });
}

describe("data retention", () => {
  let store: SqliteKeyStore;
  afterEach(async () => {
    await store?.close();
  });

  async function setup() {
    const clock = testClock(Date.UTC(2025, 0, 1));
    store = new SqliteKeyStore(":memory:");
    await store.createAccount({ id: "kept", name: "kept", retentionOptOut: false, createdAtMs: clock.t });
    await store.createAccount({ id: "private", name: "private", retentionOptOut: true, createdAtMs: clock.t });
    const auth = new AuthService(store, { now: clock.now });
    return { clock, auth, sweeper: new RetentionSweeper(store, { now: clock.now }) };
  }

  it("keeps request logs 30 days, then the sweeper deletes them (usage counts stay)", async () => {
    const { clock, auth, sweeper } = await setup();
    await auth.recordUsage(usage("old", "kept", clock.t));
    clock.t += 10 * DAY_MS;
    await auth.recordUsage(usage("newer", "kept", clock.t));
    expect((await store.getRequestLog("old"))?.requestJson).toContain("private words");
    clock.t += RETENTION_MS - 10 * DAY_MS - 1;
    expect(await sweeper.sweep()).toBe(0);
    clock.t += 1;
    expect(await sweeper.sweep()).toBe(1);
    expect(await store.getRequestLog("old")).toBeUndefined();
    expect(await store.getRequestLog("newer")).toBeDefined();
    clock.t += 10 * DAY_MS;
    expect(await sweeper.sweep()).toBe(1);
    expect(await store.getRequestLog("newer")).toBeUndefined();
    const [row] = await store.queryUsage({ accountId: "kept", groupBy: "model" });
    expect(row).toMatchObject({ requests: 2, promptTokens: 6, completionTokens: 4 });
  });

  it("stores no content for an opted-out account even when an edge sends it, but still counts usage", async () => {
    const { clock, auth } = await setup();
    await auth.recordUsage(usage("p1", "private", clock.t));
    expect(await store.getRequestLog("p1")).toBeUndefined();
    const [row] = await store.queryUsage({ accountId: "private", groupBy: "key" });
    expect(row).toMatchObject({ requests: 1, promptTokens: 3, completionTokens: 2 });
  });
});
