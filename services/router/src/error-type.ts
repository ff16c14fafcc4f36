import { Code } from "../../../lib/errors.js";
import type { ConnectError } from "../../../lib/errors.js";

/** The error type an experiment records for a failed request: the gRPC code in snake case ("resource_exhausted"). */
export function errorType(error: ConnectError): string {
  if (error.code === Code.Canceled) return "cancelled";
  return (Code[error.code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
