import { z } from "zod";
import { jsonSchema, parseConfig, portSchema, positiveIntSchema } from "../../../lib/runtime/index.js";
import { DEFAULT_CONNECTION_LIMITS } from "./http-listener.js";
import type { ConnectionLimits, ConnectionSource } from "./http-listener.js";
import { DEFAULT_STREAM_STALL_MS } from "./openai/sse.js";

const L = DEFAULT_CONNECTION_LIMITS;

const schema = z
  .object({
    PORT: portSchema.default(8080),
    /** The edge faces clients; bind all interfaces unless told otherwise. */
    HOST: z.string().default("0.0.0.0"),
    MESH_AUTH_ADDR: z.string().min(1),
    MESH_ROUTER_ADDR: z.string().min(1),
    /** Services /healthz reports on (JSON object name → address); default: auth and router. */
    MESH_HEALTH_TARGETS: jsonSchema(z.record(z.string(), z.string())).optional(),
    /** Deadline of one inference request, end to end. */
    MESH_REQUEST_TIMEOUT_MS: positiveIntSchema.default(600_000),
    /** Connection limits (see ConnectionLimits in http-listener.ts); times in milliseconds. */
    MESH_HTTP_HEADERS_TIMEOUT_MS: positiveIntSchema.default(L.headersTimeoutMs),
    MESH_HTTP_REQUEST_TIMEOUT_MS: positiveIntSchema.default(L.requestTimeoutMs),
    MESH_HTTP_KEEP_ALIVE_TIMEOUT_MS: positiveIntSchema.default(L.keepAliveTimeoutMs),
    MESH_HTTP_PRE_PROTOCOL_TIMEOUT_MS: positiveIntSchema.default(L.preProtocolTimeoutMs),
    MESH_HTTP_MAX_CONNECTIONS: positiveIntSchema.default(L.maxConnections),
    MESH_HTTP2_MAX_CONCURRENT_STREAMS: positiveIntSchema.default(L.http2MaxConcurrentStreams),
    MESH_HTTP2_MAX_SESSION_MEMORY_MB: positiveIntSchema.default(L.http2MaxSessionMemoryMb),
    /** A stream whose client reads nothing this long (buffers full) is cut off and its generation cancelled. */
    MESH_HTTP_STREAM_STALL_MS: positiveIntSchema.default(DEFAULT_STREAM_STALL_MS),
    /** "ipc": `llm-mesh up` owns the port and hands connections over (lib/runtime/hand-off.ts); else the edge listens. */
    MESH_HTTP_HAND_OFF: z.enum(["ipc", "listen"]).default("listen"),
  })
  .refine((c) => c.MESH_HTTP_HEADERS_TIMEOUT_MS <= c.MESH_HTTP_REQUEST_TIMEOUT_MS, {
    message: "MESH_HTTP_HEADERS_TIMEOUT_MS must not exceed MESH_HTTP_REQUEST_TIMEOUT_MS",
    path: ["MESH_HTTP_HEADERS_TIMEOUT_MS"],
  });

export interface EdgeConfig {
  port: number;
  host: string;
  authAddress: string;
  routerAddress: string;
  healthTargets: Record<string, string>;
  requestTimeoutMs: number;
  /** Slow, idle and numerous connections; DEFAULT_CONNECTION_LIMITS when absent. */
  connections?: ConnectionLimits;
  /** How long a stream waits for its client to read before it is cut off; DEFAULT_STREAM_STALL_MS when absent. */
  streamStallMs?: number;
  /** Listen on host:port, or take the connections the launcher hands over (default "listen"). */
  connectionSource?: ConnectionSource;
}

export function loadEdgeConfig(env: NodeJS.ProcessEnv): EdgeConfig {
  const raw = parseConfig("edge", schema, env);
  return {
    port: raw.PORT,
    host: raw.HOST,
    authAddress: raw.MESH_AUTH_ADDR,
    routerAddress: raw.MESH_ROUTER_ADDR,
    healthTargets: raw.MESH_HEALTH_TARGETS ?? { auth: raw.MESH_AUTH_ADDR, router: raw.MESH_ROUTER_ADDR },
    requestTimeoutMs: raw.MESH_REQUEST_TIMEOUT_MS,
    streamStallMs: raw.MESH_HTTP_STREAM_STALL_MS,
    connectionSource: raw.MESH_HTTP_HAND_OFF === "ipc" ? "launcher" : "listen",
    connections: {
      headersTimeoutMs: raw.MESH_HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: raw.MESH_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: raw.MESH_HTTP_KEEP_ALIVE_TIMEOUT_MS,
      preProtocolTimeoutMs: raw.MESH_HTTP_PRE_PROTOCOL_TIMEOUT_MS,
      maxConnections: raw.MESH_HTTP_MAX_CONNECTIONS,
      http2MaxConcurrentStreams: raw.MESH_HTTP2_MAX_CONCURRENT_STREAMS,
      http2MaxSessionMemoryMb: raw.MESH_HTTP2_MAX_SESSION_MEMORY_MB,
    },
  };
}
