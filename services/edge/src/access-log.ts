import type { Logger } from "../../../lib/runtime/index.js";
import type { AccessRecord } from "./generation-telemetry.js";

/** Paths polled by machines (probes, scrapers): their access lines are debug, not info. */
const QUIET_PATHS = new Set(["/healthz", "/metrics"]);

/**
 * One access line per request, as TGI and vLLM print: method, path, status,
 * duration, request id, and for generations the model, backend, prompt and
 * completion tokens, time to first token and trace id. Never a header,
 * a key or any content: only the fields named here.
 */
export function logAccess(log: Logger, method: string, path: string, status: number, startedAt: number, requestId: string, access: AccessRecord): void {
  const quiet = QUIET_PATHS.has(path);
  if (quiet ? !log.isLevelEnabled("debug") : !log.isLevelEnabled("info")) return;
  const line = {
    access: true,
    method,
    path: path.length > 256 ? `${path.slice(0, 256)}…` : path,
    status,
    ms: Math.round((performance.now() - startedAt) * 10) / 10,
    requestId,
    ...access,
  };
  if (quiet) log.debug(line, "request");
  else log.info(line, "request");
}
