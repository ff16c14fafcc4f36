import { pino } from "pino";
import type { Logger } from "pino";

import { logFormatFrom, prettyLogLine } from "./log-format.js";
import type { LogFormat } from "./log-format.js";

export type { Logger };

/**
 * Paths that may carry secrets. pino replaces them before a line is written,
 * so an API key never reaches a log even when a whole request is logged.
 */
const REDACT_PATHS = [
  "authorization",
  "apiKey",
  "api_key",
  "key",
  "secret",
  "*.authorization",
  "*.apiKey",
  "*.api_key",
  "*.secret",
  "headers.authorization",
  "req.headers.authorization",
];

/**
 * The process logger, level from `LOG_LEVEL`: JSON lines on stdout, or
 * readable lines when this process runs on its own (`llm-mesh serve`) on a
 * terminal or with `LOG_FORMAT=pretty`. Under the launcher (an IPC channel)
 * services always write JSON: the launcher formats them.
 */
/** A bad LOG_FORMAT is the launcher's to report; a service falls back to JSON. */
function formatOf(env: NodeJS.ProcessEnv, isTty: boolean): LogFormat {
  try {
    return logFormatFrom(env, isTty);
  } catch {
    return "json";
  }
}

export function createLogger(service: string): Logger {
  const options = {
    name: service,
    level: process.env.LOG_LEVEL ?? "info",
    base: { service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  const supervised = typeof process.send === "function";
  if (supervised || formatOf(process.env, Boolean(process.stdout.isTTY)) === "json") return pino(options);
  const color = Boolean(process.stdout.isTTY);
  return pino(options, { write: (line: string) => void process.stdout.write(`${prettyLogLine(line.trimEnd(), service, color)}\n`) });
}
