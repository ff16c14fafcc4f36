import { ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import type { Context, Span } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

const propagator = new W3CTraceContextPropagator();

/** Reads one header by lower-case name: HTTP headers, gRPC metadata as `Headers`, or a plain record. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined> | undefined;

function read(source: HeaderSource, name: string): string | undefined {
  if (!source) return undefined;
  if (source instanceof Headers) return source.get(name) ?? undefined;
  const value = source[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The parent context a W3C `traceparent` (and `tracestate`) in `source`
 * names; the root context when there is none or it is malformed.
 */
export function parentContextFrom(source: HeaderSource): Context {
  const traceparent = read(source, "traceparent");
  if (!traceparent) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent };
  const tracestate = read(source, "tracestate");
  if (tracestate) carrier.tracestate = tracestate;
  return propagator.extract(ROOT_CONTEXT, carrier, {
    get: (c: Record<string, string>, key: string) => c[key],
    keys: (c: Record<string, string>) => Object.keys(c),
  });
}

/** The W3C trace context headers that make the next hop's spans children of `span`. */
export function traceHeaders(span: Span): Record<string, string> {
  const sc = span.spanContext();
  const flags = (sc.traceFlags & TraceFlags.SAMPLED) !== 0 ? "01" : "00";
  const headers: Record<string, string> = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
  const state = sc.traceState?.serialize();
  if (state) headers.tracestate = state;
  return headers;
}

/** A context whose active span is `span` (the parent for a child span). */
export function contextWith(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}
