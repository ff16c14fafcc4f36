import { Code, ConnectError } from "@connectrpc/connect";

export { Code, ConnectError };

/** Metadata keys that carry an error's OpenAI `code` and `param` across hops. */
export const ERROR_REASON_HEADER = "x-mesh-error-reason";
export const ERROR_PARAM_HEADER = "x-mesh-error-param";
/** Metadata key (and HTTP header) saying when to try again, in whole seconds. */
export const RETRY_AFTER_HEADER = "retry-after";

/** `retry-after` seconds for a wait of `ms` milliseconds (whole seconds, at least 1). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** Adds a `retry-after` to an error's metadata. */
export function withRetryAfter(error: ConnectError, ms: number): ConnectError {
  error.metadata.set(RETRY_AFTER_HEADER, retryAfterSeconds(ms));
  return error;
}

export interface MeshErrorDetails {
  /** OpenAI-style machine code, e.g. "model_not_found", "context_length_exceeded". */
  reason?: string;
  /** The request parameter at fault, e.g. "messages". */
  param?: string;
  cause?: unknown;
}

/**
 * A domain failure with the most precise gRPC code. Use this, never a plain
 * `Error`, so callers see NotFound / InvalidArgument / ResourceExhausted
 * rather than Unknown. `reason` and `param` travel as error metadata so the
 * edge can answer with OpenAI's `code` and `param`.
 */
export function meshError(code: Code, message: string, details: MeshErrorDetails = {}): ConnectError {
  const metadata = new Headers();
  if (details.reason) metadata.set(ERROR_REASON_HEADER, details.reason);
  if (details.param) metadata.set(ERROR_PARAM_HEADER, details.param);
  return new ConnectError(message, code, metadata, undefined, details.cause);
}

/** The reason and param an error carries, if any. */
export function errorDetails(err: ConnectError): { reason?: string; param?: string } {
  return {
    reason: err.metadata.get(ERROR_REASON_HEADER) ?? undefined,
    param: err.metadata.get(ERROR_PARAM_HEADER) ?? undefined,
  };
}

/** Wraps anything thrown into a ConnectError, keeping an existing one as is. */
export function asConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof Error && err.name === "AbortError") return new ConnectError("cancelled", Code.Canceled, undefined, undefined, err);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
