import { describe, expect, it } from "vitest";
import { parseShardAnnouncement } from "../../../lib/nats/index.js";
import { loadShardConfig } from "./config.js";
import { advertisedAddress } from "./shard-announcer.js";

describe("shard announcements", () => {
  it("advertises the listening host, or a non-loopback IPv4 address when listening on every interface", () => {
    expect(advertisedAddress("10.1.2.3", 50051)).toBe("10.1.2.3:50051");
    expect(advertisedAddress("::1", 7)).toBe("[::1]:7");
    expect(advertisedAddress("0.0.0.0", 50051)).toMatch(/^\d+\.\d+\.\d+\.\d+:50051$/);
  });

  it("ignores malformed announcements instead of throwing", () => {
    expect(parseShardAnnouncement(Buffer.from("not json"))).toBeUndefined();
    expect(parseShardAnnouncement(Buffer.from(JSON.stringify({ id: "x", address: "a:1" })))).toBeUndefined();
  });

  it("announces only with a non-empty MESH_NATS_URL", () => {
    const base = { MESH_SHARD_MODEL: "m", MESH_SHARD_BACKEND: JSON.stringify({ name: "b", engine: "sim" }) };
    expect(loadShardConfig({ ...base, MESH_NATS_URL: "" }).natsUrl).toBeUndefined();
    expect(loadShardConfig({ ...base, MESH_NATS_URL: "nats://n:4222", MESH_SHARD_ADVERTISE_ADDR: "10.0.0.9:50051" })).toMatchObject({
      natsUrl: "nats://n:4222",
      advertiseAddress: "10.0.0.9:50051",
    });
  });
});
