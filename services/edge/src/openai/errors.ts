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

/** Codes whose message is safe to show a client; others say only "internal error". */
const EXPOSED_CODES = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.DeadlineExceeded,
  Code.Unavailable,
  Code.Canceled,
  Code.AlreadyExists,
]);

/** Maps anything thrown inside the mesh to the error the client sees. */
export function toHttpError(err: unknown, requestId: string): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ConnectError) {
    const row = ERROR_TABLE[err.code] ?? ERROR_TABLE[Code.Internal];
    const { reason, param } = errorDetails(err);
    const message = EXPOSED_CODES.has(err.code) ? err.rawMessage : `The server had an error processing your request (request id ${requestId}).`;
    const retryAfter = err.metadata.get(RETRY_AFTER_HEADER);
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
  return new ConnectError(`The server had an error processing your request (request id ${requestId}).`, code);
}

function codeForStatus(status: number): Code {
  for (const [code, row] of Object.entries(ERROR_TABLE)) if (row.status === status) return Number(code) as Code;
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
