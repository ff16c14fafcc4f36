import { lookup } from "node:dns/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../../lib/runtime/index.js";
import type { ReplicaSet } from "./replicas.js";
import { isDnsTarget, parseDnsTarget } from "./dns-target.js";

/** How often `dns:///` replica addresses are resolved again. */
export const DEFAULT_RESOLVE_INTERVAL_MS = 5_000;

/** Resolves a host name to all its IP addresses (IPv4 and IPv6). */
export type Resolver = (host: string) => Promise<string[]>;

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
          this.log.warn(
            { backend: this.set.backend.name, target: entry, err: (err as Error).message },
            "replica discovery failed; keeping the last good addresses",
          );
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
