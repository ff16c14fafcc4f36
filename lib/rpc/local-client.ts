import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import type { CallOptions, Client, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { asConnectError } from "../errors.js";
import { asMessage } from "./grpc-codec.js";

type AnyImpl = Record<string, (req: unknown, ctx: HandlerContext) => unknown>;

/**
 * A client of `service` that calls `impl` in this process: the same
 * generated interface as `grpcClient`, no serialization, no socket. What
 * the combined topology uses between edge, auth and router. Deadlines and
 * the caller's signal reach the handler as `ctx.signal` / `ctx.timeoutMs()`;
 * a deadline that passes fails the call with DeadlineExceeded; a stream the
 * caller stops reading is cancelled (its handler's signal aborts, its
 * generator is returned), as a gRPC cancel would.
 */
export function localClient<T extends DescService>(service: T, impl: ServiceImpl<T>): Client<T> {
  const handlers = impl as unknown as AnyImpl;
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = handlers[method.localName]?.bind(impl);
    if (!handler) continue;
    if (method.methodKind === "unary") methods[method.localName] = unary(service, method, handler);
    else if (method.methodKind === "server_streaming") methods[method.localName] = serverStream(service, method, handler);
  }
  return methods as Client<T>;
}

/** The call is over: releases connect's deadline timer and the listener on the caller's signal. */
const CALL_DONE = new ConnectError("the call is complete", Code.Canceled);
const CALL_CANCELLED = new ConnectError("cancelled", Code.Canceled);

type Call = ReturnType<typeof createHandlerContext>;

/**
 * connect's own handler context: it links the caller's signal and the
 * deadline (a DeadlineExceeded reason when it passes) into `ctx.signal`, so
 * no second controller or timer is needed here.
 */
function startCall(service: DescService, method: DescMethod, options: CallOptions | undefined): Call {
  return createHandlerContext({
    service,
    method,
    protocolName: "in-process",
    requestMethod: "POST",
    url: `in-process:///${service.typeName}/${method.name}`,
    requestSignal: options?.signal,
    timeoutMs: options?.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : undefined,
    requestHeader: options?.headers,
  });
}

function failure(err: unknown, call: Call): ConnectError {
  const reason: unknown = call.signal.reason;
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return new ConnectError("deadline exceeded", Code.DeadlineExceeded);
  return asConnectError(err);
}

function unary(service: DescService, method: DescMethod, handler: AnyImpl[string]) {
  return async (request: object, options?: CallOptions): Promise<unknown> => {
    if (options?.signal?.aborted) throw new ConnectError("cancelled", Code.Canceled);
    const call = startCall(service, method, options);
    try {
      return asMessage(method.output, (await handler(asMessage(method.input, request), call)) as object);
    } catch (err) {
      throw failure(err, call);
    } finally {
      call.abort(CALL_DONE);
    }
  };
}

function serverStream(service: DescService, method: DescMethod, handler: AnyImpl[string]) {
  return (request: object, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      if (options?.signal?.aborted) throw new ConnectError("cancelled", Code.Canceled);
      const call = startCall(service, method, options);
      const stream = handler(asMessage(method.input, request), call) as AsyncIterable<object>;
      let ended = false;
      try {
        for await (const message of stream) {
          if (call.signal.aborted) throw call.signal.reason ?? new ConnectError("cancelled", Code.Canceled);
          yield asMessage(method.output, message);
        }
        ended = true;
      } catch (err) {
        ended = true;
        throw failure(err, call);
      } finally {
        // The consumer stopped early: cancel the handler as a gRPC cancel would.
        call.abort(ended ? CALL_DONE : CALL_CANCELLED);
      }
    },
  });
}
