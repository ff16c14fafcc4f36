/**
 * CPU time of processes, read from /proc/<pid>/stat (user + system, in ms):
 * what the overhead scenario divides by requests to get CPU per request per
 * service. Linux only; elsewhere the readings are empty and the tables say so.
 */
import { readFileSync } from "node:fs";

const CLOCK_TICKS_PER_S = 100;

/** User + system CPU of one process so far, in ms; undefined when unreadable. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** CPU used by each named process between two readings. */
export class CpuMeter {
  readonly #start = new Map<string, number>();

  constructor(private readonly pids: ReadonlyMap<string, number>) {
    for (const [name, pid] of pids) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) this.#start.set(name, ms);
    }
  }

  /** ms of CPU per process since construction. */
  read(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, pid] of this.pids) {
      const now = processCpuMs(pid);
      const start = this.#start.get(name);
      if (now !== undefined && start !== undefined) out.set(name, now - start);
    }
    return out;
  }
}
