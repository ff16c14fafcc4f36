import { ConfigError } from "./config.js";
import { createLogger } from "./logger.js";
import { shutdownTelemetry } from "../telemetry/tracing.js";
import type { Logger } from "./logger.js";

/** How long in-flight calls get to finish after SIGTERM. */
export const DRAIN_TIMEOUT_MS = 10_000;

/** After the drain timeout, this much longer before the process exits regardless. */
const FORCED_EXIT_GRACE_MS = 5_000;

/** What a service's `start` returns: its bound port and how to stop it. */
export interface RunningService {
  port: number;
  /** NOT_SERVING → drain (at most `drainMs`) → release resources. */
  close(drainMs: number): Promise<void>;
}

/** A message a service sends its launcher over IPC once it listens. */
export interface ListeningMessage {
  type: "listening";
  service: string;
  port: number;
}

/**
 * The body of every service's `main.ts`: start, report the port (stdout and
 * IPC for the launcher), and on SIGTERM/SIGINT go NOT_SERVING, drain, exit.
 */
export async function runService(name: string, start: (log: Logger) => Promise<RunningService>): Promise<void> {
  const log = createLogger(name);
  let service: RunningService;
  try {
    service = await start(log);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
    } else {
      log.fatal({ err }, "failed to start");
    }
    process.exit(1);
  }
  log.info({ port: service.port }, "listening");
  const message: ListeningMessage = { type: "listening", service: name, port: service.port };
  process.send?.(message);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal while draining: the operator wants out now.
      if (signal !== "disconnect") process.exit(1);
      return;
    }
    stopping = true;
    log.info({ signal }, "draining");
    // Whatever hangs in a drain, the process still ends.
    setTimeout(() => {
      log.error({ signal }, "drain did not finish in time; exiting");
      process.exit(1);
    }, DRAIN_TIMEOUT_MS + FORCED_EXIT_GRACE_MS).unref();
    service
      .close(DRAIN_TIMEOUT_MS)
      // Spans still buffered are exported before the process goes.
      .then(() => shutdownTelemetry().catch((err: unknown) => log.warn({ err: (err as Error).message }, "traces not exported")))
      .then(() => {
        log.info("stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, "unclean shutdown");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The launcher went away without a signal: do not linger as an orphan.
  process.on("disconnect", () => stop("disconnect"));
}
