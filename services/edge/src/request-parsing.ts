import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { z } from "zod";
import { HttpError } from "./openai/errors.js";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Longest Authorization header looked at. */
const MAX_AUTH_HEADER_CHARS = 512;
const BEARER_PATTERN = /^Bearer +(\S+) *$/i;

/** The client's x-request-id when it is a sane one, else a fresh id (REST and RPC alike). */
export function requestIdOf(clientId: string | null | undefined): string {
  return clientId && REQUEST_ID_PATTERN.test(clientId) ? clientId : randomUUID().replaceAll("-", "");
}

/** The key of an `Authorization: Bearer KEY` value; undefined when malformed or too long. */
export function bearerToken(header: string): string | undefined {
  return header.length <= MAX_AUTH_HEADER_CHARS ? BEARER_PATTERN.exec(header)?.[1] : undefined;
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Decodes one URL path segment; a malformed one is a 400. */
export function decodePathSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, "Malformed URL", "invalid_request_error", null, "invalid_url");
  }
}

/** Validates a JSON body with a zod schema; a 400 naming the first bad field otherwise. */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.join(".") || null;
  throw new HttpError(400, `Invalid body: ${param ?? "(root)"}: ${issue.message}`, "invalid_request_error", param, "invalid_value");
}
