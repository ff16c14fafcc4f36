import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../runtime/config.js";

/**
 * Service authentication inside the mesh: every internal gRPC call carries
 * the mesh's shared service token in this metadata key, and every internal
 * server refuses a call without it (UNAUTHENTICATED). `grpc.health.v1`
 * stays open, so probes and the launcher need no secret.
 */
export const SERVICE_TOKEN_METADATA = "x-mesh-service-token";
/** The env var every service reads its service token from. */
export const SERVICE_TOKEN_ENV = "MESH_SERVICE_TOKEN";
/** The file `llm-mesh up` keeps the token in (data dir, mode 0600). */
export const SERVICE_TOKEN_FILE = "service-token";
/** The fully qualified name of the health service, which needs no token. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";

/** Shortest token accepted: 32 characters (the generated ones carry 256 random bits). */
const MIN_TOKEN_CHARS = 32;
const MAX_TOKEN_CHARS = 512;
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/** A new service token: `mesh-svc-` + 256 random bits, base64url. */
export function generateServiceToken(): string {
  return `mesh-svc-${randomBytes(32).toString("base64url")}`;
}

/** Whether `value` can be a service token (32 to 512 printable ASCII characters). */
export function isServiceToken(value: string): boolean {
  return value.length >= MIN_TOKEN_CHARS && value.length <= MAX_TOKEN_CHARS && TOKEN_PATTERN.test(value);
}

/** Checks presented tokens against one expected token in constant time (SHA-256 digests compared with timingSafeEqual). */
export class ServiceTokenCheck {
  readonly #expected: Buffer;

  constructor(token: string) {
    this.#expected = digest(token);
  }

  matches(presented: unknown): boolean {
    if (typeof presented !== "string" || presented.length > MAX_TOKEN_CHARS) return false;
    return timingSafeEqual(digest(presented), this.#expected);
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

let fromEnv: { token: string | undefined } | undefined;

/**
 * This process's service token: MESH_SERVICE_TOKEN, read and checked once;
 * undefined when unset (internal gRPC then runs without service
 * authentication, which `startRpcServer` allows on loopback only).
 */
export function processServiceToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env !== process.env) return parseToken(env[SERVICE_TOKEN_ENV]);
  fromEnv ??= { token: parseToken(env[SERVICE_TOKEN_ENV]) };
  return fromEnv.token;
}

function parseToken(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!isServiceToken(value)) throw new ConfigError(`${SERVICE_TOKEN_ENV} must be 32 to 512 printable ASCII characters (llm-mesh up generates one)`);
  return value;
}
