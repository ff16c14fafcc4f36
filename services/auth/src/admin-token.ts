import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { hashSecret } from "./api-key.js";

/** The file in the data dir that holds the operator's admin token (mode 0600). */
export const ADMIN_TOKEN_FILE = "admin-token";
const ADMIN_TOKEN_PATTERN = /^mesh-admin-[A-Za-z0-9_-]{43}$/;

/** A new admin token: 256 random bits. */
export function generateAdminToken(): string {
  return `mesh-admin-${randomBytes(32).toString("base64url")}`;
}

/** Whether a string has the admin token's shape (`mesh-admin-` + 43 base64url characters). */
export function isAdminToken(value: string): boolean {
  return ADMIN_TOKEN_PATTERN.test(value);
}

/** Reads `<dataDir>/admin-token`, or undefined when there is none. */
export async function readAdminToken(dataDir: string): Promise<string | undefined> {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  if (!existsSync(file)) return undefined;
  const token = (await readFile(file, "utf8")).trim();
  return token || undefined;
}

/** Returns the data dir's admin token, creating it (mode 0600) on the first start. */
export async function ensureAdminToken(dataDir: string): Promise<string> {
  const existing = await readAdminToken(dataDir);
  if (existing) return existing;
  const token = generateAdminToken();
  await writeFile(path.join(dataDir, ADMIN_TOKEN_FILE), `${token}\n`, { mode: 0o600, flag: "wx" }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  return (await readAdminToken(dataDir)) ?? token;
}

/** Whether a presented admin token is the expected one (constant time, via hashes). */
export function adminTokenMatches(presented: string | undefined, expected: string | undefined): boolean {
  if (!presented || !expected || !ADMIN_TOKEN_PATTERN.test(presented)) return false;
  const a = Buffer.from(hashSecret(presented), "hex");
  const b = Buffer.from(hashSecret(expected), "hex");
  return timingSafeEqual(a, b);
}

/** The token of an `authorization: Bearer …` header value, if well formed. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header || header.length > 512) return undefined;
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return match?.[1];
}
