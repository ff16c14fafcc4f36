import type { ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { ERROR_PARAM_HEADER, ERROR_REASON_HEADER, errorDetails, RETRY_AFTER_HEADER } from "../../../../lib/errors.js";

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error the edge answers with: HTTP status plus OpenAI's body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

interface TableRow {
  status: number;
  type: string;
  code: string | null;
}

/**
 * The one table from the mesh's gRPC codes to HTTP statuses and OpenAI
 * error types. A reason carried in the error's metadata (e.g.
 * "model_not_found") overrides the default `code`.
 */
export const ERROR_TABLE: Record<Code, TableRow> = {
  [Code.Canceled]: { status: 499, type: "request_cancelled", code: "cancelled" },
  [Code.Unknown]: { status: 500, type: "server_error", code: null },
  [Code.InvalidArgument]: { status: 400, type: "invalid_request_error", code: null },
  [Code.DeadlineExceeded]: { status: 504, type: "timeout", code: "timeout" },
  [Code.NotFound]: { status: 404, type: "invalid_request_error", code: "not_found" },
  [Code.AlreadyExists]: { status: 409, type: "invalid_request_error", code: "already_exists" },
  [Code.PermissionDenied]: { status: 403, type: "invalid_request_error", code: "permission_denied" },
  [Code.ResourceExhausted]: { status: 429, type: "requests", code: "rate_limit_exceeded" },
  [Code.FailedPrecondition]: { status: 400, type: "invalid_request_error", code: null },
  [Code.Aborted]: { status: 409, type: "server_error", code: "aborted" },
  [Code.OutOfRange]: { status: 400, type: "invalid_request_error", code: null },
  [Code.Unimplemented]: { status: 501, type: "invalid_request_error", code: "unsupported" },
  [Code.Internal]: { status: 500, type: "server_error", code: null },
  [Code.Unavailable]: { status: 503, type: "server_error", code: "service_unavailable" },
  [Code.DataLoss]: { status: 500, type: "server_error", code: null },
  [Code.Unauthenticated]: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
};

/**
 * Reasons that answer differently from their code's row. "overloaded" is
 * the mesh at capacity (the router's in-flight bound, a full shard queue),
 * not the caller's own limit: 503 with `retry-after`, so it does not read
 * like a 429 rate limit.
 */
export const REASON_TABLE: Record<string, TableRow> = {
  overloaded: { status: 503, type: "server_error", code: "overloaded" },
};
/** `retry-after` seconds when an overloaded answer carries none. */
const OVERLOADED_RETRY_AFTER_S = "1";

/**
 * Codes whose message the mesh writes about the client's own request (a bad
 * parameter, a limit, a missing model): shown as they are. Every other code
 * may carry a transport's or a dependency's words (addresses, "connect
 * ECONNREFUSED 10.0.0.5:8000", deadlines of internal hops), so the client
 * gets a plain sentence for the code and the request id; the log keeps the detail.
 */
const EXPOSED_CODES = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.AlreadyExists,
]);

/** What a client reads for a code whose own message stays inside. */
function plainMessage(code: Code, requestId: string): string {
  switch (code) {
    case Code.DeadlineExceeded:
      return `The request timed out (request id ${requestId}).`;
    case Code.Unavailable:
      return `The service is temporarily unavailable; please retry (request id ${requestId}).`;
    case Code.Canceled:
      return `The request was cancelled (request id ${requestId}).`;
    default:
      return `The server had an error processing your request (request id ${requestId}).`;
  }
}

/** Whether the client sees only the plain message for this error (the detail belongs in the log). */
export function hidesDetail(err: unknown): boolean {
  return !(err instanceof HttpError) && !(err instanceof ConnectError && EXPOSED_CODES.has(err.code));
}

/** Maps anything thrown inside the mesh to the error the client sees. */
export function toHttpError(err: unknown, requestId: string): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ConnectError) {
    const { reason, param } = errorDetails(err);
    const byReason = reason === undefined ? undefined : REASON_TABLE[reason];
    const row = byReason ?? ERROR_TABLE[err.code] ?? ERROR_TABLE[Code.Internal];
    const message = EXPOSED_CODES.has(err.code) ? err.rawMessage : plainMessage(err.code, requestId);
    const retryAfter = err.metadata.get(RETRY_AFTER_HEADER) ?? (byReason?.status === 503 ? OVERLOADED_RETRY_AFTER_S : null);
    return new HttpError(row.status, message, row.type, param ?? null, reason ?? row.code, retryAfter ? { [RETRY_AFTER_HEADER]: retryAfter } : {});
  }
  return new HttpError(500, `The server had an error processing your request (request id ${requestId}).`, "server_error");
}

/**
 * The error an RPC client of the public InferenceService sees: the same
 * code, reason and param as REST, and no internals for unexpected errors.
 */
export function toPublicConnectError(err: unknown, requestId: string): ConnectError {
  if (err instanceof HttpError) return new ConnectError(err.message, codeForStatus(err.status), errorMetadata(err.code, err.param));
  if (err instanceof ConnectError && EXPOSED_CODES.has(err.code)) {
    // Rebuilt so only the reason and param travel on, not a downstream hop's headers.
    const { reason, param } = errorDetails(err);
    return new ConnectError(err.rawMessage, err.code, errorMetadata(reason ?? null, param ?? null));
  }
  const code = err instanceof ConnectError ? err.code : Code.Internal;
  const { reason } = err instanceof ConnectError ? errorDetails(err) : {};
  return new ConnectError(plainMessage(code, requestId), code, errorMetadata(reason ?? null, null));
}

function codeForStatus(status: number): Code {
  for (const [code, row] of Object.entries(ERROR_TABLE)) if (row.status === status) return Number(code);
  return status === 413 ? Code.ResourceExhausted : status < 500 ? Code.InvalidArgument : Code.Internal;
}

function errorMetadata(reason: string | null, param: string | null): Headers {
  const metadata = new Headers();
  if (reason) metadata.set(ERROR_REASON_HEADER, reason);
  if (param) metadata.set(ERROR_PARAM_HEADER, param);
  return metadata;
}

/** Writes an OpenAI-shaped JSON error. */
export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) return;
  const body = JSON.stringify(error.body());
  res.writeHead(error.status, {
    ...error.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}
