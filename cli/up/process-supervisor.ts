import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import * as readline from "node:readline";
import { prettyLogLine, RestartBackoff } from "../../lib/runtime/index.js";
import type { LogFormat } from "../../lib/runtime/index.js";

export interface ProcessSpec {
  name: string;
  script: string;
  env: Record<string, string>;
}

/**
 * One supervised child process: its output lines prefixed with its name,
 * restarted with back-off when it dies unexpectedly.
 */
export class SupervisedProcess {
  #child: ChildProcess | undefined;

  /** The running child's process id (benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }
  #stopping = false;
  readonly #backoff = new RestartBackoff();
  #restartTimer: NodeJS.Timeout | undefined;
  /** Called with every child this starts, restarts included (the launcher hands the front process its connections). */
  onSpawn: ((child: ChildProcess) => void) | undefined;
  readonly #messageListeners: Array<(message: unknown) => void> = [];

  constructor(
    readonly spec: ProcessSpec,
    private readonly out: (line: string) => void,
    /** "json": the services' lines as they are, prefixed `[name]`; "pretty": readable lines. */
    private readonly format: LogFormat = "json",
    private readonly color = false,
  ) {}

  start(): void {
    this.#backoff.started();
    const child = fork(this.spec.script, [], {
      env: { ...process.env, ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.#child = child;
    this.onSpawn?.(child);
    for (const listener of this.#messageListeners) child.on("message", listener);
    const prefix = `[${this.spec.name}]`;
    for (const stream of [child.stdout!, child.stderr!]) {
      readline
        .createInterface({ input: stream })
        // The name read per line: a spare shard renamed when it is given a model (added-model-shards.ts) is shown by its new name.
        .on("line", (line) => this.out(this.format === "pretty" ? prettyLogLine(line, this.spec.name, this.color) : `[${this.spec.name}] ${line}`));
    }
    child.once("exit", (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (this.#stopping) return;
      const delay = this.#backoff.nextDelayMs();
      this.out(`${prefix} exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      this.#restartTimer = setTimeout(() => this.start(), delay);
    });
  }

  /** Sends an IPC message to the running child; false when none is running. */
  send(message: unknown): boolean {
    const child = this.#child;
    if (!child?.connected) return false;
    child.send(message as object);
    return true;
  }

  /** Calls `listener` with every IPC message of the running child (and of its restarts). */
  onMessage(listener: (message: unknown) => void): void {
    this.#messageListeners.push(listener);
    this.#child?.on("message", listener);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
