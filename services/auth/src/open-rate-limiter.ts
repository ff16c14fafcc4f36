import { connectNats, meshNatsNames } from "../../../lib/nats/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { NatsRateLimiter } from "./nats-rate-limiter.js";
import { RateLimiter } from "./rate-limiter.js";
import type { KeyRateLimiter } from "./rate-limiter.js";
import type { KeyStoreSettings } from "./store/index.js";

/** The KV bucket of the shared rate-limit counters under a mesh prefix. */
export function rateLimitBucket(prefix: string): string {
  return `${meshNatsNames(prefix).prefix}_ratelimits`;
}

/**
 * The limiter for the configured store: in memory with SQLite (one auth
 * process), shared through NATS KV with MESH_STORE=nats (every replica counts
 * against the same limits; fails open while NATS is unreachable).
 */
export async function openRateLimiter(settings: KeyStoreSettings, log: Logger, now: () => number): Promise<KeyRateLimiter> {
  if ((settings.store ?? "sqlite") === "sqlite") return new RateLimiter(now);
  const nc = await connectNats({ url: settings.natsUrl ?? "nats://127.0.0.1:4222", name: "mesh-auth-ratelimit", log });
  const bucket = rateLimitBucket(settings.natsPrefix ?? "mesh");
  const limiter = await NatsRateLimiter.open({ nc, bucket, replicas: settings.natsReplicas ?? 1, now, log, ownsConnection: true });
  log.info({ bucket }, "rate limits: shared on NATS KV (fail open when NATS is unreachable)");
  return limiter;
}
