import * as grpc from "@grpc/grpc-js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { headersToMetadata, metadataToHeaders, serviceDefinition, toStatus } from "./grpc-codec.js";
import { HEALTH_SERVICE, SERVICE_TOKEN_METADATA } from "./service-token.js";
import type { ServiceTokenCheck } from "./service-token.js";

/** The part of connect's ConnectRouter our internal services use. */
export interface ServiceRegistrar {
  service(service: DescService, implementation: object): ServiceRegistrar;
}

// Abort reasons made once: a fresh DOMException per call (with its stack
// trace) costs more than the rest of a small call.
const CALL_CANCELLED = new ConnectError("the caller cancelled", Code.Canceled);
const CALL_DEADLINE = new ConnectError("deadline exceeded", Code.DeadlineExceeded);
const CALL_DONE = new ConnectError("the call is complete", Code.Canceled);
const SERVER_SHUTDOWN = new ConnectError("the server is shutting down", Code.Unavailable);

type Impl = Record<string, ((req: unknown, ctx: HandlerContext) => unknown) | undefined>;

/**
 * Registers connect-style implementations (`async method(req, ctx)` and
 * async generators for server streaming) on a grpc-js server, so service
 * code is written once in connect's style and served by grpc-js, which is
 * several times cheaper per call than connect-node's server here.
 */
/**
 * With `tokenCheck`, every call of every service but `grpc.health.v1` must
 * carry the mesh's service token (see service-token.ts), else it ends
 * UNAUTHENTICATED before the handler runs.
 */
export function grpcRegistrar(server: grpc.Server, shutdown: AbortSignal, draining: AbortSignal, tokenCheck?: ServiceTokenCheck): ServiceRegistrar {
  const work = new InFlight(shutdown);
  // Watch* streams are subscriptions, not work: they end as soon as draining starts.
  const watches = new InFlight(AbortSignal.any([shutdown, draining]));
  const registrar: ServiceRegistrar = {
    service(service, implementation) {
      const impl = implementation as Impl;
      const handlers: grpc.UntypedServiceImplementation = {};
      for (const method of service.methods) {
        const fn = impl[method.localName];
        if (!fn) continue;
        const bound = fn.bind(implementation);
        handlers[method.localName] =
          method.methodKind === "server_streaming"
            ? serverStreamHandler(service, method, bound, method.name.startsWith("Watch") ? watches : work)
            : unaryHandler(service, method, bound, work);
        if (tokenCheck && service.typeName !== HEALTH_SERVICE) handlers[method.localName] = requireServiceToken(handlers[method.localName], tokenCheck);
      }
      server.addService(serviceDefinition(service), handlers);
      return registrar;
    },
  };
  return registrar;
}

/**
 * The calls in flight under one shutdown signal, aborted together when it
 * fires: one listener on the signal instead of one per call (which also
 * made Node warn MaxListenersExceeded past ten concurrent calls).
 */
class InFlight {
  readonly #calls = new Set<AbortController>();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener(
      "abort",
      () => {
        for (const call of this.#calls) call.abort(SERVER_SHUTDOWN);
        this.#calls.clear();
      },
      { once: true },
    );
  }

  add(call: AbortController): void {
    if (this.signal.aborted) call.abort(SERVER_SHUTDOWN);
    else this.#calls.add(call);
  }

  delete(call: AbortController): void {
    this.#calls.delete(call);
  }
}

interface CallLike {
  metadata: grpc.Metadata;
  getDeadline(): grpc.Deadline;
  on(event: "cancelled", listener: () => void): unknown;
  sendMetadata(metadata: grpc.Metadata): void;
}

function contextFor(service: DescService, method: DescMethod, call: CallLike, inFlight: InFlight) {
  const abort = new AbortController();
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
  call.on("cancelled", () => abort.abort(CALL_CANCELLED));
  inFlight.add(abort);
  let timer: NodeJS.Timeout | undefined;
  if (deadlineMs !== undefined) timer = setTimeout(() => abort.abort(CALL_DEADLINE), Math.max(0, deadlineMs - Date.now()));
  const responseTrailer = new Headers();
  let requestHeader: Headers | undefined;
  let responseHeader: Headers | undefined;
  const ctx = {
    method,
    service,
    signal: abort.signal,
    timeoutMs: () => (deadlineMs === undefined ? undefined : Math.max(0, deadlineMs - Date.now())),
    requestMethod: "POST",
    get requestHeader() {
      return (requestHeader ??= metadataToHeaders(call.metadata));
    },
    get responseHeader() {
      return (responseHeader ??= new Headers());
    },
    responseTrailer,
    protocolName: "grpc",
    url: method.name,
    values: createContextValues(),
  } as unknown as HandlerContext;
  const done = (): void => {
    clearTimeout(timer);
    inFlight.delete(abort);
    abort.abort(CALL_DONE);
  };
  /** The status for a failure: past the deadline, whatever was thrown, it is DEADLINE_EXCEEDED. */
  const statusOf = (err: unknown) =>
    deadlineMs !== undefined && Date.now() >= deadlineMs ? { code: grpc.status.DEADLINE_EXCEEDED, details: "deadline exceeded" } : toStatus(err);
  return { ctx, done, responseTrailer, statusOf };
}

function unaryHandler(
  service: DescService,
  method: DescMethod,
  fn: (req: unknown, ctx: HandlerContext) => unknown,
  inFlight: InFlight,
): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const { ctx, done, responseTrailer, statusOf } = contextFor(service, method, call, inFlight);
    Promise.resolve()
      .then(() => fn(call.request, ctx))
      .then(
        (res) => callback(null, res as object, trailers(responseTrailer)),
        (err: unknown) => callback(statusOf(err)),
      )
      .finally(done);
  };
}

function serverStreamHandler(
  service: DescService,
  method: DescMethod,
  fn: (req: unknown, ctx: HandlerContext) => unknown,
  inFlight: InFlight,
): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const { ctx, done, responseTrailer, statusOf } = contextFor(service, method, call, inFlight);
    void (async () => {
      const iterator = (fn(call.request, ctx) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      const stop = (): void => void iterator.return?.(undefined).catch(() => {});
      ctx.signal.addEventListener("abort", stop, { once: true });
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done || ctx.signal.aborted) break;
          if (!call.write(next.value)) {
            await new Promise<void>((resolve) => {
              call.once("drain", resolve);
              ctx.signal.addEventListener("abort", () => resolve(), { once: true });
            });
          }
        }
        if (!call.cancelled) call.end(trailers(responseTrailer));
      } catch (err) {
        if (!call.cancelled) call.emit("error", statusOf(err));
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        done();
      }
    })();
  };
}

/** Trailers to send, or nothing when the handler set none. */
function trailers(headers: Headers): grpc.Metadata | undefined {
  let any = false;
  headers.forEach(() => (any = true));
  return any ? headersToMetadata(headers) : undefined;
}

const UNAUTHENTICATED_CALL = { code: grpc.status.UNAUTHENTICATED, details: "internal call without a valid service token" };

/** Wraps a handler so a call without the service token ends UNAUTHENTICATED; the token is removed before the handler sees the metadata. */
function requireServiceToken(handler: grpc.UntypedHandleCall, check: ServiceTokenCheck): grpc.UntypedHandleCall {
  const allowed = (call: { metadata: grpc.Metadata }): boolean => {
    const ok = check.matches(call.metadata.get(SERVICE_TOKEN_METADATA)[0]);
    call.metadata.remove(SERVICE_TOKEN_METADATA);
    return ok;
  };
  const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
  const stream = handler as grpc.handleServerStreamingCall<unknown, unknown>;
  return ((call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
    if (callback) {
      if (!allowed(call)) return callback(UNAUTHENTICATED_CALL);
      return unary(call, callback);
    }
    const writable = call as grpc.ServerWritableStream<unknown, unknown>;
    if (!allowed(writable)) return void writable.emit("error", UNAUTHENTICATED_CALL);
    return stream(writable);
  }) as grpc.UntypedHandleCall;
}
