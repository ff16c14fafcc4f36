import { Code, ConnectError } from "@connectrpc/connect";

export { Code, ConnectError };

/**
 * A domain failure with the most precise gRPC code. Use this, never a plain
 * `Error`, so callers see NotFound / InvalidArgument / ResourceExhausted
 * rather than Unknown.
 */
export function meshError(code: Code, message: string, cause?: unknown): ConnectError {
  return new ConnectError(message, code, undefined, undefined, cause);
}

/** Wraps anything thrown into a ConnectError, keeping an existing one as is. */
export function asConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof Error && err.name === "AbortError") return new ConnectError("cancelled", Code.Canceled, undefined, undefined, err);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
