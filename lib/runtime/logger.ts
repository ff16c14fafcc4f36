import { pino } from "pino";
import type { Logger } from "pino";

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

/** The process logger: JSON lines on stdout, level from `LOG_LEVEL`. */
export function createLogger(service: string): Logger {
  return pino({
    name: service,
    level: process.env.LOG_LEVEL ?? "info",
    base: { service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  });
}
