import { z } from "zod";

/** How often a shard announces itself on NATS. */
export const SHARD_HEARTBEAT_MS = 1_000;
/** A shard not heard from for this long leaves every router's pool. */
export const SHARD_EXPIRY_MS = 3_000;

/**
 * What a shard says of itself on `<prefix>.shards.v1.announce.<id>` (JSON):
 * where to reach it, what it serves, how much it can take and how busy it is.
 * `leaving` is sent once on a clean shutdown so routers drop it at once.
 */
export const shardAnnouncementSchema = z.object({
  /** Unique per shard process (a restarted shard is a new id). */
  id: z.string().min(1).max(128),
  /** "host:port" routers dial. */
  address: z.string().min(1).max(300),
  /** The catalog model and backend this shard serves. */
  model: z.string().min(1).max(256),
  backend: z.string().min(1).max(256),
  engine: z.string().max(64),
  /** Sequences it runs at once, and requests it queues beyond them. */
  capacity: z.object({ sequences: z.number().int().min(0), queue: z.number().int().min(0) }),
  load: z.object({ running: z.number().int().min(0), queued: z.number().int().min(0) }),
  leaving: z.boolean().optional(),
});

/** One shard's announcement. */
export type ShardAnnouncement = z.infer<typeof shardAnnouncementSchema>;

/** Parses an announcement's bytes; undefined for anything malformed (ignored, never thrown). */
export function parseShardAnnouncement(data: Uint8Array): ShardAnnouncement | undefined {
  try {
    const parsed = shardAnnouncementSchema.safeParse(JSON.parse(Buffer.from(data).toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
