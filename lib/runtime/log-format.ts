import { ConfigError } from "./config.js";

/** How log lines are written: readable lines for a person, JSON lines for a shipper. */
export type LogFormat = "pretty" | "json";

/**
 * `LOG_FORMAT=json` or `LOG_FORMAT=pretty` when set; otherwise pretty on a
 * terminal and JSON when the output is a pipe or a file (what log shippers read).
 */
export function logFormatFrom(env: NodeJS.ProcessEnv, isTty: boolean): LogFormat {
  const value = (env.LOG_FORMAT ?? "").trim().toLowerCase();
  if (value === "") return isTty ? "pretty" : "json";
  if (value === "json" || value === "pretty") return value;
  throw new ConfigError(`LOG_FORMAT must be json or pretty (got "${value}")`);
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const LEVEL_COLORS: Record<number, string> = { 10: "90", 20: "36", 30: "32", 40: "33", 50: "31", 60: "35" };
/** pino's own fields and the ones a line shows in its fixed places. */
const HIDDEN = new Set(["level", "time", "pid", "hostname", "name", "service", "msg", "access", "method", "path", "status", "ms"]);
/** Longest value shown per field; the JSON line keeps everything. */
const MAX_VALUE_CHARS = 200;

function clock(time: unknown): string {
  const date = typeof time === "number" ? new Date(time) : new Date();
  return date.toISOString().slice(11, 23);
}

function show(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = /[\s"=]/.test(value) || value === "" ? JSON.stringify(value) : value;
  else if (value && typeof value === "object") {
    const err = value as { type?: string; message?: string };
    text = typeof err.message === "string" ? JSON.stringify(`${err.type ?? "Error"}: ${err.message}`) : JSON.stringify(value);
  } else text = String(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}

/**
 * One pino JSON line as a line a person reads:
 * `12:00:01.234 INFO  edge    request POST /v1/chat/completions 200 15.2ms model=… requestId=…`.
 * `service` names the process when the line has no `service` field; a line
 * that is not pino JSON (a stack trace on stderr) comes back unchanged,
 * prefixed with the service.
 */
export function prettyLogLine(line: string, service: string, color = false): string {
  let entry: Record<string, unknown>;
  try {
    if (!line.startsWith("{")) throw new Error("not JSON");
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${" ".repeat(12)} ${"".padEnd(5)} ${service.padEnd(7)} ${line}`;
  }
  const levelNumber = Number(entry.level);
  const levelName = (LEVELS[levelNumber] ?? (entry.level == null ? "" : show(entry.level))).padEnd(5);
  const level = color ? `\x1b[${LEVEL_COLORS[levelNumber] ?? "0"}m${levelName}\x1b[0m` : levelName;
  const who = typeof entry.service === "string" ? entry.service : service;
  const parts = [clock(entry.time), level, who.padEnd(7), typeof entry.msg === "string" ? entry.msg : entry.msg == null ? "" : show(entry.msg)];
  if (entry.access === true) parts.push(`${show(entry.method)} ${show(entry.path)} ${show(entry.status)} ${show(entry.ms)}ms`);
  for (const [key, value] of Object.entries(entry)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    parts.push(`${key}=${show(value)}`);
  }
  return parts.join(" ");
}
