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

const channels = new Map<string, grpc.Client>();

/** One shared HTTP/2 channel per address ("host:port"). */
function channel(address: string): grpc.Client {
  const target = address.replace(/^https?:\/\//, "");
  let client = channels.get(target);
  if (!client) {
    client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      "grpc.keepalive_time_ms": CLIENT_KEEPALIVE_TIME_MS,
      "grpc.keepalive_timeout_ms": CLIENT_KEEPALIVE_TIMEOUT_MS,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      // Reconnect quickly after a restarted service comes back.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 2_000,
    });
    channels.set(target, client);
  }
  return client;
}

/** A call cancelled by a deadline that has passed failed because of the deadline. */
function failure(err: unknown, deadline: number | undefined): ConnectError {
  const error = toConnectError(err);
  if (deadline !== undefined && Date.now() >= deadline && error.code === Code.Canceled) {
    return new ConnectError("deadline exceeded", Code.DeadlineExceeded, error.metadata);
  }
  return error;
}

/** What grpc-js needs to start one call: metadata and the absolute deadline (fixed when the call starts). */
function callStart(options: CallOptions | undefined, serviceToken: string | undefined) {
  const deadline = options?.timeoutMs !== undefined && options.timeoutMs > 0 ? Date.now() + options.timeoutMs : undefined;
  const metadata = options?.headers ? headersToMetadata(new Headers(options.headers)) : new grpc.Metadata();
  if (serviceToken) metadata.set(SERVICE_TOKEN_METADATA, serviceToken);
  return {
    metadata,
    callOptions: (deadline === undefined ? {} : { deadline }) satisfies grpc.CallOptions,
    deadline,
  };
}

function unary(client: grpc.Client, method: DescMethod, serviceToken: string | undefined) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(new ConnectError("cancelled", Code.Canceled));
      const { metadata, callOptions, deadline } = callStart(options, serviceToken);
      const call = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, asMessage(method.input, request), metadata, callOptions, (err, res) => {
        signal?.removeEventListener("abort", cancel);
        if (err) reject(failure(err, deadline));
        else resolve(res);
      });
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
}

function serverStream(client: grpc.Client, method: DescMethod, serviceToken: string | undefined) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      const signal = options?.signal;
      if (signal?.aborted) throw new ConnectError("cancelled", Code.Canceled);
      const { metadata, callOptions, deadline } = callStart(options, serviceToken);
      const call = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, asMessage(method.input, request), metadata, callOptions);
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      let ended = false;
      call.once("status", () => (ended = true));
      try {
        for await (const message of call) yield message;
        ended = true;
      } catch (err) {
        ended = true;
        throw failure(err, deadline);
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
}

/**
 * A typed client for `service` at `address` with connect's client interface
 * (promises for unary calls, async iterables for server streams, `signal` and
 * `timeoutMs` options, ConnectError failures), carried by grpc-js. Every
 * call carries the mesh's service token (MESH_SERVICE_TOKEN) when there is one.
 */
export function grpcClient<T extends DescService>(service: T, address: string, options: GrpcClientOptions = {}): Client<T> {
  const client = channel(address);
  const token = options.serviceToken === undefined ? processServiceToken() : options.serviceToken || undefined;
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "unary") methods[method.localName] = unary(client, method, token);
    else if (method.methodKind === "server_streaming") methods[method.localName] = serverStream(client, method, token);
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
  const client = channels.get(target);
  if (!client) return false;
  channels.delete(target);
  client.close();
  return true;
}

/** Whether a shared channel to `address` is open (for tests and diagnostics). */
export function hasChannel(address: string): boolean {
  return channels.has(address.replace(/^https?:\/\//, ""));
}
