import type { z } from "zod";
import { HttpError } from "./openai/errors.js";

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
