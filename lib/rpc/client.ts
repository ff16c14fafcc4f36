import * as grpc from "@grpc/grpc-js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";
import { asMessage, headersToMetadata, methodDefinition, toConnectError } from "./grpc-codec.js";

/** Ping an idle connection this often so a dead peer is noticed. */
const CLIENT_KEEPALIVE_TIME_MS = 15_000;
const CLIENT_KEEPALIVE_TIMEOUT_MS = 5_000;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

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

function callOptions(options: CallOptions | undefined): grpc.CallOptions {
  return options?.timeoutMs !== undefined && options.timeoutMs > 0 ? { deadline: Date.now() + options.timeoutMs } : {};
}

function unary(client: grpc.Client, method: DescMethod) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(toConnectError({ code: grpc.status.CANCELLED, details: "cancelled" }));
      const call = client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        asMessage(method.input, request),
        options?.headers ? headersToMetadata(new Headers(options.headers)) : new grpc.Metadata(),
        callOptions(options),
        (err, res) => {
          signal?.removeEventListener("abort", cancel);
          if (err) reject(toConnectError(err));
          else resolve(res);
        },
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
}

function serverStream(client: grpc.Client, method: DescMethod) {
  const def = methodDefinition(method);
  return (request: object, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      const signal = options?.signal;
      if (signal?.aborted) throw toConnectError({ code: grpc.status.CANCELLED, details: "cancelled" });
      const call = client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        asMessage(method.input, request),
        options?.headers ? headersToMetadata(new Headers(options.headers)) : new grpc.Metadata(),
        callOptions(options),
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      try {
        for await (const message of call) yield message;
      } catch (err) {
        throw toConnectError(err);
      } finally {
        signal?.removeEventListener("abort", cancel);
        // The consumer stopped early: cancel the call so the server stops too.
        call.cancel();
      }
    },
  });
}

/**
 * A typed client for `service` at `address` with connect's client interface
 * (promises for unary calls, async iterables for server streams, `signal` and
 * `timeoutMs` options, ConnectError failures), carried by grpc-js.
 */
export function grpcClient<T extends DescService>(service: T, address: string): Client<T> {
  const client = channel(address);
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "unary") methods[method.localName] = unary(client, method);
    else if (method.methodKind === "server_streaming") methods[method.localName] = serverStream(client, method);
  }
  return methods as Client<T>;
}
