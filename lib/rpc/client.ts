import * as grpc from "@grpc/grpc-js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions, Client } from "@connectrpc/connect";
import { asMessage, headersToMetadata, methodDefinition, toConnectError } from "./grpc-codec.js";
import { MAX_MESSAGE_BYTES } from "./limits.js";
import { processServiceToken, SERVICE_TOKEN_METADATA } from "./service-token.js";

/** Ping an idle connection this often so a dead peer is noticed. */
const CLIENT_KEEPALIVE_TIME_MS = 15_000;
const CLIENT_KEEPALIVE_TIMEOUT_MS = 5_000;

/**
 * A call that rides out a restart (see GrpcClientOptions.rideOutRestarts)
 * tries this many times in all when it fails UNAVAILABLE before the server answered.
 */
const RESTART_RETRY_ATTEMPTS = 5;

/**
 * grpc-js's retry policy (gRFC A6) for calls that ride out restarts: UNAVAILABLE
 * before any response (the peer went away under a call it never answered) is tried again.
 * grpc-js never retries a call once response headers arrived, so nothing delivered is repeated.
 */
const RESTART_SERVICE_CONFIG = JSON.stringify({
  methodConfig: [
    {
      name: [{}],
      waitForReady: true,
      retryPolicy: {
        maxAttempts: RESTART_RETRY_ATTEMPTS,
        initialBackoff: "0.1s",
        maxBackoff: "1s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
});

const channels = new Map<string, grpc.Client>();

/** One shared HTTP/2 channel per address ("host:port"), and a second one for clients that ride out restarts. */
function channel(address: string, rideOutRestarts: boolean): grpc.Client {
  const target = address.replace(/^https?:\/\//, "");
  const key = rideOutRestarts ? `${target}#ride-out` : target;
  let client = channels.get(key);
  if (!client) {
    client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      ...(rideOutRestarts ? { "grpc.service_config": RESTART_SERVICE_CONFIG, "grpc.enable_retries": 1 } : {}),
      "grpc.keepalive_time_ms": CLIENT_KEEPALIVE_TIME_MS,
      "grpc.keepalive_timeout_ms": CLIENT_KEEPALIVE_TIMEOUT_MS,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      // Reconnect quickly after a restarted service comes back.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 2_000,
    });
    channels.set(key, client);
  }
  return client;
}

/**
 * A call cancelled by a deadline failed because of the deadline: its own (passed), or the caller's,
 * whose signal aborts with DeadlineExceeded a moment before this call's own timer would fire.
 */
function failure(err: unknown, deadline: number | undefined, signal: AbortSignal | undefined): ConnectError {
  const error = toConnectError(err);
  const callerDeadline = signal?.aborted === true && signal.reason instanceof ConnectError && signal.reason.code === Code.DeadlineExceeded;
  if (error.code === Code.Canceled && (callerDeadline || (deadline !== undefined && Date.now() >= deadline))) {
    return new ConnectError("deadline exceeded", Code.DeadlineExceeded, error.metadata);
  }
  return error;
}

/** What grpc-js needs to start one call: metadata and the absolute deadline (fixed when the call starts). */
function callStart(options: CallOptions | undefined, serviceToken: string | undefined, waitForReady: boolean) {
  const deadline = options?.timeoutMs !== undefined && options.timeoutMs > 0 ? Date.now() + options.timeoutMs : undefined;
  const metadata = options?.headers ? headersToMetadata(new Headers(options.headers)) : new grpc.Metadata();
  if (serviceToken) metadata.set(SERVICE_TOKEN_METADATA, serviceToken);
  // A channel in TRANSIENT_FAILURE (the peer restarting) queues the call until it is ready again or the deadline passes.
  if (waitForReady) metadata.setOptions({ waitForReady: true });
  return {
    metadata,
    callOptions: (deadline === undefined ? {} : { deadline }) satisfies grpc.CallOptions,
    deadline,
  };
}

function unary(client: grpc.Client, method: DescMethod, serviceToken: string | undefined, waitForReady: boolean) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(failure(new ConnectError("cancelled", Code.Canceled), undefined, signal));
      const { metadata, callOptions, deadline } = callStart(options, serviceToken, waitForReady);
      const call = client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        asMessage(method.input, request),
        metadata,
        callOptions,
        (err, res) => {
          signal?.removeEventListener("abort", cancel);
          if (err) reject(failure(err, deadline, signal));
          else resolve(res);
        },
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
}

function serverStream(client: grpc.Client, method: DescMethod, serviceToken: string | undefined, waitForReady: boolean) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      const signal = options?.signal;
      if (signal?.aborted) throw failure(new ConnectError("cancelled", Code.Canceled), undefined, signal);
      const { metadata, callOptions, deadline } = callStart(options, serviceToken, waitForReady);
      const call = client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        asMessage(method.input, request),
        metadata,
        callOptions,
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      let ended = false;
      call.once("status", () => (ended = true));
      try {
        for await (const message of call) yield message;
        ended = true;
      } catch (err) {
        ended = true;
        throw failure(err, deadline, signal);
      } finally {
        signal?.removeEventListener("abort", cancel);
        // The consumer stopped early: cancel the call so the server stops too.
        if (!ended) call.cancel();
      }
    },
  });
}

export interface GrpcClientOptions {
  /** The service token every call carries; default MESH_SERVICE_TOKEN; "" sends none. */
  serviceToken?: string;
  /**
   * Ride out a restart of the peer (the edge's clients of auth and the router, one process
   * each): a call waits while the channel reconnects (grpc-js `waitForReady`) and is tried again
   * when it fails UNAVAILABLE before any response, both within the call's deadline. Off for
   * callers that have another replica to go to (the router's shard calls fail fast and retry elsewhere).
   */
  rideOutRestarts?: boolean;
}

/**
 * A typed client for `service` at `address` with connect's client interface
 * (promises for unary calls, async iterables for server streams, `signal` and
 * `timeoutMs` options, ConnectError failures), carried by grpc-js. Every
 * call carries the mesh's service token (MESH_SERVICE_TOKEN) when there is one.
 */
export function grpcClient<T extends DescService>(service: T, address: string, options: GrpcClientOptions = {}): Client<T> {
  const rideOut = options.rideOutRestarts ?? false;
  const client = channel(address, rideOut);
  const token = options.serviceToken === undefined ? processServiceToken() : options.serviceToken || undefined;
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "unary") methods[method.localName] = unary(client, method, token, rideOut);
    else if (method.methodKind === "server_streaming") methods[method.localName] = serverStream(client, method, token, rideOut);
  }
  return methods as Client<T>;
}

/**
 * Closes the shared channel to `address` (a replica that left the pool):
 * calls already running on it finish, the next client for the address opens
 * a new channel. Returns whether one was open.
 */
export function closeChannel(address: string): boolean {
  const target = address.replace(/^https?:\/\//, "");
  let closed = false;
  for (const key of [target, `${target}#ride-out`]) {
    const client = channels.get(key);
    if (!client) continue;
    channels.delete(key);
    client.close();
    closed = true;
  }
  return closed;
}

/** Whether a shared channel to `address` is open (for tests and diagnostics). */
export function hasChannel(address: string): boolean {
  const target = address.replace(/^https?:\/\//, "");
  return channels.has(target) || channels.has(`${target}#ride-out`);
}
