import { jetstream, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectToken } from "../../../lib/nats/index.js";
import type { Logger } from "../../../lib/runtime/index.js";
import { RATE_WINDOW_MS } from "./rate-limiter.js";
import type { Admission, KeyRateLimiter, RateLimits, RateStatus } from "./rate-limiter.js";

/** Width of one sub-window counter: a grant counts for 60-61 s (never less than the window). */
export const RATE_SLOT_MS = 1_000;
/** The bucket's max age: an idle key's entry disappears this long after its last change. */
export const RATE_BUCKET_TTL_MS = 2 * RATE_WINDOW_MS;
/** One JetStream call's wait, and the budget of a whole decision, before the limiter fails open. */
export const RATE_CALL_TIMEOUT_MS = 250;
export const RATE_DECISION_BUDGET_MS = 750;
/** At most one "failing open" warning per this interval. */
const WARN_INTERVAL_MS = 10_000;

/** The JSON of one key's entry: sub-window counters and the grants not yet settled. */
interface WindowState {
  /** [slot start ms, requests, tokens], oldest first. */
  slots: [number, number, number][];
  /** request id → [slot start ms, reserved tokens]: what `settle` corrects. */
  pending: Record<string, [number, number]>;
}

type Op =
  | { kind: "admit"; requestId: string; tokens: number; limits: RateLimits; resolve: (a: Admission) => void }
  | { kind: "settle"; requestId: string; usedTokens: number; resolve: () => void }
  | { kind: "forget"; resolve: () => void };

export interface NatsRateLimiterOptions {
  nc: NatsConnection;
  /** The KV bucket, `<prefix>_ratelimits`. */
  bucket: string;
  replicas?: number;
  now?: () => number;
  log?: Logger;
  /** Close the connection on `close()`. */
  ownsConnection?: boolean;
  callTimeoutMs?: number;
  decisionBudgetMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const emptyState = (): WindowState => ({ slots: [], pending: {} });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A wrong-last-sequence answer: another replica wrote the entry first. */
function isConflict(err: unknown): boolean {
  const code = (err as { code?: number }).code;
  return code === 10071 || code === 10164;
}

/**
 * Per-key limits shared by every auth replica (MESH_STORE=nats): one entry per
 * key in the JetStream KV bucket `<prefix>_ratelimits` holds 1-second
 * sub-window counters of requests and tokens, plus the grants awaiting
 * `settle` (so usage recorded on another replica corrects the reservation).
 * Each change is a read-modify-write with `kv.update(key, value, revision)`,
 * retried on a revision mismatch: admissions are exact across replicas. Within
 * one replica, operations on a key queue up and go to NATS as one batch, so
 * only replicas contend with each other. The bucket's max age drops idle keys.
 *
 * NATS unreachable: the limiter FAILS OPEN. A decision that does not get
 * through within {@link RATE_DECISION_BUDGET_MS} admits the request (with a
 * rate-limited warning) and a lost correction is dropped: serving must not stop
 * because the limiter's store is down; limits resume when NATS is back.
 */
export class NatsRateLimiter implements KeyRateLimiter {
  readonly #queues = new Map<string, Op[]>();
  readonly #now: () => number;
  readonly #budgetMs: number;
  #lastWarnMs = 0;
  /** Decisions that failed open since start (for tests and metrics). */
  failedOpen = 0;

  private constructor(
    private readonly kv: KV,
    private readonly options: NatsRateLimiterOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#budgetMs = options.decisionBudgetMs ?? RATE_DECISION_BUDGET_MS;
  }

  /** Creates (or opens) the bucket. */
  static async open(options: NatsRateLimiterOptions): Promise<NatsRateLimiter> {
    const js = jetstream(options.nc, { timeout: options.callTimeoutMs ?? RATE_CALL_TIMEOUT_MS });
    const kv = await new Kvm(js).create(options.bucket, {
      history: 1,
      replicas: options.replicas ?? 1,
      // File, not memory: a NATS restart keeps the counters (and the bucket itself).
      storage: StorageType.File,
      ttl: RATE_BUCKET_TTL_MS,
      description: "mesh auth: per-key request and token counters (1 s sub-windows of a 60 s window)",
    });
    return new NatsRateLimiter(kv, options);
  }

  admit(keyId: string, requestId: string, tokens: number, limits: RateLimits): Promise<Admission> {
    if (limits.requestsPerMinute <= 0 && limits.tokensPerMinute <= 0) {
      return Promise.resolve({ admitted: true, status: statusOf(emptyState(), limits, this.#now(), 0) });
    }
    return new Promise((resolve) => this.#enqueue(keyId, { kind: "admit", requestId, tokens, limits, resolve }));
  }

  /** Corrects a grant's tokens; `keyId` finds its entry (any replica may settle). */
  settle(requestId: string, usedTokens: number, keyId?: string): Promise<void> {
    if (keyId === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#enqueue(keyId, { kind: "settle", requestId, usedTokens, resolve }));
  }

  async status(keyId: string, limits: RateLimits): Promise<RateStatus> {
    const now = this.#now();
    try {
      const entry = await this.kv.get(this.#key(keyId));
      const state = entry?.operation === "PUT" ? prune(parse(entry.value), now) : emptyState();
      return statusOf(state, limits, now, 0);
    } catch (err) {
      this.#warn(err);
      return statusOf(emptyState(), limits, now, 0);
    }
  }

  forget(keyId: string): Promise<void> {
    return new Promise((resolve) => this.#enqueue(keyId, { kind: "forget", resolve }));
  }

  async close(): Promise<void> {
    if (this.options.ownsConnection) await this.options.nc.drain().catch(() => this.options.nc.close());
  }

  #key(keyId: string): string {
    return `key.${subjectToken(keyId)}`;
  }

  #enqueue(keyId: string, op: Op): void {
    const queue = this.#queues.get(keyId);
    if (queue) {
      queue.push(op);
      return;
    }
    this.#queues.set(keyId, [op]);
    void this.#drain(keyId);
  }

  /** Sends the key's queued operations to NATS, one batch per round, until none are left. */
  async #drain(keyId: string): Promise<void> {
    const queue = this.#queues.get(keyId)!;
    while (queue.length > 0) {
      const batch = queue.splice(0);
      try {
        const results = await this.#apply(keyId, batch);
        batch.forEach((op, i) => (op.resolve as (r: unknown) => void)(results[i]));
      } catch (err) {
        this.#warn(err);
        const now = this.#now();
        for (const op of batch) {
          if (op.kind === "admit") {
            this.failedOpen++;
            op.resolve({ admitted: true, status: statusOf(emptyState(), op.limits, now, 0) });
          } else op.resolve();
        }
      }
    }
    this.#queues.delete(keyId);
  }

  /** Read, decide the batch in order, write with the read revision; again on a conflict. */
  async #apply(keyId: string, batch: Op[]): Promise<(Admission | undefined)[]> {
    const key = this.#key(keyId);
    const deadline = Date.now() + this.#budgetMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error("rate-limit decision timed out");
      const entry = await withTimeout(this.kv.get(key), remaining);
      const now = this.#now();
      const before = entry?.operation === "PUT" ? parse(entry.value) : emptyState();
      const state = prune(structuredClone(before), now);
      let dirty = state.slots.length !== before.slots.length || Object.keys(state.pending).length !== Object.keys(before.pending).length;
      const results = batch.map((op) => {
        const outcome = decide(state, op, now);
        dirty ||= outcome.changed;
        return outcome.admission;
      });
      if (!dirty) return results;
      const value = encoder.encode(JSON.stringify(state));
      try {
        const write = entry ? this.kv.update(key, value, entry.revision) : this.kv.create(key, value);
        await withTimeout(write, deadline - Date.now());
        return results;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Another replica won this round: re-read and decide again (jitter breaks lockstep).
        await sleep(Math.random() * 2);
      }
    }
  }

  #warn(err: unknown): void {
    const t = Date.now();
    if (t - this.#lastWarnMs < WARN_INTERVAL_MS) return;
    this.#lastWarnMs = t;
    this.options.log?.warn({ err: (err as Error).message }, "rate limiter: NATS unreachable, failing open (requests admitted unlimited)");
  }
}

function parse(bytes: Uint8Array): WindowState {
  const state = JSON.parse(decoder.decode(bytes)) as Partial<WindowState>;
  return { slots: state.slots ?? [], pending: state.pending ?? {} };
}

/** A slot counts while any moment of it is less than a window ago. */
const slotLive = (start: number, now: number): boolean => start + RATE_SLOT_MS + RATE_WINDOW_MS > now;

function prune(state: WindowState, now: number): WindowState {
  state.slots = state.slots.filter(([start]) => slotLive(start, now));
  for (const [id, [start]] of Object.entries(state.pending)) if (!slotLive(start, now)) delete state.pending[id];
  return state;
}

/** Applies one operation to `state` (mutating it), as the in-memory limiter would. */
function decide(state: WindowState, op: Op, now: number): { admission?: Admission; changed: boolean } {
  if (op.kind === "forget") {
    const changed = state.slots.length > 0 || Object.keys(state.pending).length > 0;
    state.slots = [];
    state.pending = {};
    return { changed };
  }
  if (op.kind === "settle") {
    const grant = state.pending[op.requestId];
    if (!grant) return { changed: false };
    delete state.pending[op.requestId];
    const slot = state.slots.find(([start]) => start === grant[0]);
    if (slot) slot[2] = Math.max(0, slot[2] + op.usedTokens - grant[1]);
    return { changed: true };
  }
  const { requestsPerMinute: rpm, tokensPerMinute: tpm } = op.limits;
  const requests = state.slots.reduce((sum, s) => sum + s[1], 0);
  const tokens = state.slots.reduce((sum, s) => sum + s[2], 0);
  let exceeded: Admission["exceeded"];
  if (rpm > 0 && requests + 1 > rpm) exceeded = "requests";
  else if (tpm > 0 && tokens + op.tokens > tpm) exceeded = "tokens";
  let changed = false;
  if (!exceeded && !state.pending[op.requestId]) {
    const start = now - (now % RATE_SLOT_MS);
    let slot = state.slots.at(-1);
    if (!slot || slot[0] !== start) state.slots.push((slot = [start, 0, 0]));
    slot[1]++;
    slot[2] += op.tokens;
    state.pending[op.requestId] = [start, op.tokens];
    changed = true;
  }
  return { admission: { admitted: !exceeded, exceeded, status: statusOf(state, op.limits, now, exceeded === "tokens" ? op.tokens : 0) }, changed };
}

function statusOf(state: WindowState, limits: RateLimits, now: number, wantedTokens: number): RateStatus {
  const { requestsPerMinute: rpm, tokensPerMinute: tpm } = limits;
  const requests = state.slots.reduce((sum, s) => sum + s[1], 0);
  const usedTokens = state.slots.reduce((sum, s) => sum + s[2], 0);
  const expiry = (start: number) => Math.max(0, start + RATE_SLOT_MS + RATE_WINDOW_MS - now);
  const oldest = state.slots.find((s) => s[1] > 0);
  let resetTokensMs = 0;
  const wanted = Math.max(wantedTokens, 1);
  if (tpm > 0 && usedTokens + wanted > tpm) {
    resetTokensMs = RATE_WINDOW_MS;
    let used = usedTokens;
    for (const [start, , t] of state.slots) {
      used -= t;
      if (used + wanted <= tpm) {
        resetTokensMs = expiry(start);
        break;
      }
    }
  }
  return {
    limitRequests: rpm,
    remainingRequests: rpm > 0 ? Math.max(0, rpm - requests) : 0,
    resetRequestsMs: oldest && rpm > 0 ? expiry(oldest[0]) : 0,
    limitTokens: tpm,
    remainingTokens: tpm > 0 ? Math.max(0, tpm - usedTokens) : 0,
    resetTokensMs,
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("rate-limit decision timed out")), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
