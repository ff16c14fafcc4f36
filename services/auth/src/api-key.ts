import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** Our keys: `sk-mesh-<public id>-<secret>`; the secret is 256 random bits. */
const MESH_KEY_PATTERN = /^sk-mesh-([a-z0-9]{12})-([A-Za-z0-9_-]{43})$/;
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES = 32;

/** Whether `value` has a key id's shape (ours, and the `ext…` ids of bootstrap keys). */
export function isKeyId(value: string): boolean {
  return /^[a-z0-9]{12}$/.test(value);
}

/** A key split into its public id and its secret. */
export interface ParsedKey {
  id: string;
  secret: string;
}

/** A new key: show `apiKey` once, store only `secretHash`. */
export interface NewKey extends ParsedKey {
  apiKey: string;
  secretHash: string;
}

/** Generates a key from the CSPRNG. */
export function generateKey(id = generateKeyId()): NewKey {
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  return { id, secret, apiKey: `sk-mesh-${id}-${secret}`, secretHash: hashSecret(secret) };
}

export function generateKeyId(): string {
  const bytes = randomBytes(12);
  let id = "";
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

/**
 * Splits a presented key. Keys in our format carry their id; any other
 * `sk-` key (a bootstrap key from the environment) gets an id derived from
 * its hash and the whole key is its secret.
 */
export function parseKey(apiKey: string): ParsedKey | undefined {
  const match = MESH_KEY_PATTERN.exec(apiKey);
  if (match) return { id: match[1], secret: match[2] };
  if (!apiKey.startsWith("sk-") || apiKey.length < 24 || apiKey.length > 256 || !/^[\x21-\x7e]+$/.test(apiKey)) return undefined;
  return { id: `ext${hashSecret(apiKey).slice(0, 9)}`, secret: apiKey };
}

/** SHA-256 of a secret: secrets are 256 random bits, so a fast hash is enough. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** A non-secret hint to recognise a key by: its prefix and public id. */
export function keyHint(id: string): string {
  return id.startsWith("ext") ? `sk-…(${id})` : `sk-mesh-${id}-…`;
}
