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

interface Call {
  ctx: HandlerContext;
  abort: AbortController;
  timedOut: () => boolean;
  done(): void;
}

function startCall(service: DescService, method: DescMethod, options: CallOptions | undefined): Call {
  const abort = new AbortController();
  const caller = options?.signal;
  const onAbort = (): void => abort.abort(caller?.reason);
  if (caller?.aborted) abort.abort(caller.reason);
  else caller?.addEventListener("abort", onAbort, { once: true });
  let expired = false;
  const timeoutMs = options?.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : undefined;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          expired = true;
          abort.abort(new ConnectError("deadline exceeded", Code.DeadlineExceeded));
        }, timeoutMs);
  const ctx = createHandlerContext({
    service,
    method,
    protocolName: "in-process",
    requestMethod: "POST",
    url: `in-process:///${service.typeName}/${method.name}`,
    requestSignal: abort.signal,
    timeoutMs,
    requestHeader: options?.headers,
  });
  return {
    ctx,
    abort,
    timedOut: () => expired,
    done() {
      if (timer) clearTimeout(timer);
      caller?.removeEventListener("abort", onAbort);
    },
  };
}

function failure(err: unknown, call: Call): ConnectError {
  if (call.timedOut()) return new ConnectError("deadline exceeded", Code.DeadlineExceeded);
  return asConnectError(err);
}

function unary(service: DescService, method: DescMethod, handler: AnyImpl[string]) {
  return async (request: object, options?: CallOptions): Promise<unknown> => {
    if (options?.signal?.aborted) throw new ConnectError("cancelled", Code.Canceled);
    const call = startCall(service, method, options);
    try {
      return asMessage(method.output, (await handler(asMessage(method.input, request), call.ctx)) as object);
    } catch (err) {
      throw failure(err, call);
    } finally {
      call.done();
    }
  };
}

function serverStream(service: DescService, method: DescMethod, handler: AnyImpl[string]) {
  return (request: object, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      if (options?.signal?.aborted) throw new ConnectError("cancelled", Code.Canceled);
      const call = startCall(service, method, options);
      const stream = handler(asMessage(method.input, request), call.ctx) as AsyncIterable<object>;
      let ended = false;
      try {
        for await (const message of stream) {
          if (call.ctx.signal.aborted) throw call.ctx.signal.reason ?? new ConnectError("cancelled", Code.Canceled);
          yield asMessage(method.output, message);
        }
        ended = true;
      } catch (err) {
        ended = true;
        throw failure(err, call);
      } finally {
        // The consumer stopped early: cancel the handler as a gRPC cancel would.
        if (!ended) call.abort.abort(new ConnectError("cancelled", Code.Canceled));
        call.done();
      }
    },
  });
}
