import { ConfigError } from "../../../lib/runtime/index.js";

const DNS_PREFIX = "dns:///";

/** Whether a catalog address is a `dns:///NAME:PORT` target (grpc's naming) rather than a plain "host:port". */
export function isDnsTarget(address: string): boolean {
  return address.startsWith(DNS_PREFIX);
}

/** The host and port of a `dns:///NAME:PORT` target; a malformed one is a ConfigError. */
export function parseDnsTarget(address: string): { host: string; port: number } {
  const rest = address.slice(DNS_PREFIX.length);
  const match = /^(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(rest);
  const port = match ? Number(match[3]) : NaN;
  if (!isDnsTarget(address) || !match || port < 1 || port > 65535) {
    throw new ConfigError(`catalog address "${address}" is not a dns:///NAME:PORT target`);
  }
  return { host: match[1] ?? match[2], port };
}
