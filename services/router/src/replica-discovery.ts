import { lookup } from "node:dns/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "../../../lib/runtime/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ReplicaSet } from "./replicas.js";

/** How often `dns:///` replica addresses are resolved again. */
export const DEFAULT_RESOLVE_INTERVAL_MS = 5_000;

/** Resolves a host name to all its IP addresses (IPv4 and IPv6). */
export type Resolver = (host: string) => Promise<string[]>;

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
  return { host: (match[1] ?? match[2]), port };
}

/** "ip:port", with IPv6 addresses in brackets. */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The system resolver (getaddrinfo: /etc/hosts and the search domains, so short Service names work). */
export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/**
 * Keeps a ReplicaSet's replicas equal to its backend's addresses, with every
 * `dns:///NAME:PORT` entry expanded to one "ip:port" per A/AAAA record of
 * NAME, resolved again every `intervalMs`. Plain "host:port" entries pass
 * through. A name whose resolution fails (or comes back empty) keeps its last
 * good addresses; until a first success it contributes none.
 */
export class ReplicaDiscovery {
  readonly #lastGood = new Map<string, string[]>();

  constructor(
    private readonly set: ReplicaSet,
    private readonly log: Logger,
    private readonly resolver: Resolver = systemResolver,
    private readonly intervalMs = DEFAULT_RESOLVE_INTERVAL_MS,
  ) {
    for (const a of set.backend.addresses ?? []) if (isDnsTarget(a)) parseDnsTarget(a);
  }

  /** Whether the backend has any `dns:///` entry (otherwise there is nothing to discover). */
  static needed(set: ReplicaSet): boolean {
    return (set.backend.addresses ?? []).some(isDnsTarget);
  }

  /** Resolves every entry once and applies the result to the set. */
  async refresh(): Promise<void> {
    const lists = await Promise.all(
      (this.set.backend.addresses ?? []).map(async (entry) => {
        if (!isDnsTarget(entry)) return [entry];
        const { host, port } = parseDnsTarget(entry);
        try {
          const ips = [...new Set(await this.resolver(host))];
          if (ips.length === 0) throw new Error("no addresses");
          const resolved = ips.map((ip) => joinHostPort(ip, port));
          this.#lastGood.set(entry, resolved);
          return resolved;
        } catch (err) {
          this.log.warn({ backend: this.set.backend.name, target: entry, err: (err as Error).message }, "replica discovery failed; keeping the last good addresses");
          return this.#lastGood.get(entry) ?? [];
        }
      }),
    );
    // The catalog's addresses, expanded: they replace the set's "catalog" source (NATS discovery adds its own beside them).
    const { added, removed } = this.set.setSource("catalog", lists.flat());
    if (added.length > 0 || removed.length > 0) this.log.info({ backend: this.set.backend.name, added, removed }, "replicas changed");
  }

  /** Resolves now and then every `intervalMs` until `signal` aborts; resolves once the first round is applied. */
  async start(signal: AbortSignal): Promise<void> {
    await this.refresh();
    const loop = async (): Promise<void> => {
      while (!signal.aborted) {
        await sleep(this.intervalMs, undefined, { signal }).catch(() => {});
        if (!signal.aborted) await this.refresh();
      }
    };
    void loop();
  }
}
