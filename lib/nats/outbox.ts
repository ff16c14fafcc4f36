import { readFile, rm, writeFile } from "node:fs/promises";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/index.js";
import { isTransientNatsError } from "./retry.js";

/** How long one JetStream publish waits for its ack before the message is buffered. */
export const PUBLISH_TIMEOUT_MS = 1_000;
/** How often buffered messages are retried while NATS is away (also on every reconnect). */
export const REPLAY_INTERVAL_MS = 1_000;
/** The most messages held while NATS is away; beyond it the oldest are dropped (and counted). */
export const MAX_BUFFERED = 100_000;

/** What became of one published message. */
export type OutboxResult = "stored" | "duplicate" | "buffered";

/** A message that must reach a stream exactly once. */
export interface OutboxMessage {
  subject: string;
  /** Becomes `Nats-Msg-Id`: the stream drops a second copy inside its duplicate window. */
  msgId: string;
  data: Uint8Array;
  /** Refuse the message when its subject holds one already (a permanent "recorded once"). */
  firstOnSubject?: boolean;
  /** Extra headers, e.g. a timestamp a headers-only scan can read. */
  headers?: Record<string, string>;
}

export interface OutboxOptions {
  log?: Logger;
  publishTimeoutMs?: number;
  replayIntervalMs?: number;
  maxBuffered?: number;
  /** Where buffered messages are saved on close and read back on open, so a restart loses none. */
  spillFile?: string;
}

interface SpilledMessage {
  subject: string;
  msgId: string;
  data: string;
  firstOnSubject?: boolean;
  headers?: Record<string, string>;
}

/**
 * Publishes to JetStream with de-duplication and rides out NATS outages: a
 * message whose ack does not come (NATS down, no stream leader, timeout) is
 * buffered in order and replayed with the same `Nats-Msg-Id` when NATS is
 * back, so it is stored exactly once even when the first attempt did land.
 */
export class JetStreamOutbox {
  readonly #buffer: OutboxMessage[] = [];
  readonly #timeoutMs: number;
  readonly #max: number;
  #timer: NodeJS.Timeout | undefined;
  #replaying: Promise<void> | undefined;
  #dropped = 0;
  #closed = false;
  #connected = true;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly options: OutboxOptions = {},
  ) {
    this.#timeoutMs = options.publishTimeoutMs ?? PUBLISH_TIMEOUT_MS;
    this.#max = options.maxBuffered ?? MAX_BUFFERED;
    this.#timer = setInterval(() => void this.replay(), options.replayIntervalMs ?? REPLAY_INTERVAL_MS);
    this.#timer.unref();
    void this.#replayOnReconnect();
  }

  /** Messages waiting for NATS. */
  get pending(): number {
    return this.#buffer.length;
  }

  /** Messages dropped because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Reads back what a previous process saved on close. */
  async restore(): Promise<number> {
    const file = this.options.spillFile;
    if (!file) return 0;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      return 0;
    }
    const saved = JSON.parse(text) as SpilledMessage[];
    for (const m of saved)
      this.#enqueue({ subject: m.subject, msgId: m.msgId, data: Buffer.from(m.data, "base64"), firstOnSubject: m.firstOnSubject, headers: m.headers });
    await rm(file, { force: true });
    this.options.log?.info({ messages: saved.length }, "restored buffered NATS messages");
    void this.replay();
    return saved.length;
  }

  /**
   * Publishes one message. "buffered" means NATS is away and the message will
   * be replayed; a permanent refusal (bad subject, message too large) throws.
   */
  async publish(message: OutboxMessage): Promise<OutboxResult> {
    // Keep order: while older messages wait, a new one waits behind them.
    if (this.#buffer.length > 0) {
      this.#enqueue(message);
      void this.replay();
      return "buffered";
    }
    const result = await this.#send(message);
    if (result !== undefined) return result;
    this.#enqueue(message);
    return "buffered";
  }

  /** Sends buffered messages in order until the buffer is empty or NATS fails again. */
  replay(): Promise<void> {
    this.#replaying ??= this.#drain().finally(() => {
      this.#replaying = undefined;
    });
    return this.#replaying;
  }

  /** Tries to send what is buffered for up to `waitMs`, then saves the rest to the spill file. */
  async close(waitMs = 2_000): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + waitMs;
    // Waiting is pointless while disconnected: save at once.
    while (this.#buffer.length > 0 && this.#connected && Date.now() < deadline && !this.nc.isClosed()) {
      await this.replay();
      if (this.#buffer.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    if (this.#buffer.length === 0) return;
    if (this.options.spillFile) {
      const saved: SpilledMessage[] = this.#buffer.map((m) => ({
        subject: m.subject,
        msgId: m.msgId,
        data: Buffer.from(m.data).toString("base64"),
        firstOnSubject: m.firstOnSubject,
        headers: m.headers,
      }));
      await writeFile(this.options.spillFile, JSON.stringify(saved), { mode: 0o600 });
      this.options.log?.warn({ messages: saved.length, file: this.options.spillFile }, "saved buffered NATS messages for the next start");
    } else {
      this.options.log?.error({ messages: this.#buffer.length }, "buffered NATS messages lost at close");
    }
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0 && !this.nc.isClosed()) {
      const head = this.#buffer[0];
      let result: OutboxResult | undefined;
      try {
        result = await this.#send(head);
      } catch (err) {
        // Permanently refused: drop it rather than block every message behind it.
        this.options.log?.error({ subject: head.subject, err: (err as Error).message }, "NATS refused a buffered message; dropped");
        result = "stored";
      }
      if (result === undefined) return;
      this.#buffer.shift();
    }
  }

  /** Undefined: NATS is away, try again later. */
  async #send(m: OutboxMessage): Promise<OutboxResult | undefined> {
    if (this.#closed && this.nc.isClosed()) return undefined;
    let hdrs;
    if (m.headers) {
      hdrs = natsHeaders();
      for (const [k, v] of Object.entries(m.headers)) hdrs.set(k, v);
    }
    try {
      const ack = await this.js.publish(m.subject, m.data, {
        msgID: m.msgId,
        timeout: this.#timeoutMs,
        ...(hdrs ? { headers: hdrs } : {}),
        ...(m.firstOnSubject ? { expect: { lastSubjectSequence: 0 } } : {}),
      });
      return ack.duplicate ? "duplicate" : "stored";
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return "duplicate";
      // NATS away, a timeout, or a 503 "no stream leader" while the cluster elects: retry later.
      if (isTransientNatsError(err)) return undefined;
      throw err;
    }
  }

  #enqueue(m: OutboxMessage): void {
    if (this.#buffer.length >= this.#max) {
      this.#buffer.shift();
      this.#dropped++;
      if (this.#dropped === 1 || this.#dropped % 1000 === 0) this.options.log?.error({ dropped: this.#dropped }, "NATS outbox full: oldest messages dropped");
    }
    this.#buffer.push(m);
  }

  async #replayOnReconnect(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") this.#connected = false;
      if (s.type === "reconnect") {
        this.#connected = true;
        void this.replay();
      }
    }
  }
}
