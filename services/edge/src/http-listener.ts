import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { HAND_OFF_CONNECTION, HAND_OFF_DRAINING, HAND_OFF_DRAINING_SEEN, HAND_OFF_RETURNED, stopReading } from "../../../lib/runtime/index.js";
import type { HandOffConnectionMessage } from "../../../lib/runtime/index.js";

/** The HTTP/2 connection preface a cleartext (h2c, prior knowledge) client sends first. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * How the edge bounds slow, idle and numerous connections (all times in
 * milliseconds). Defaults in DEFAULT_CONNECTION_LIMITS; config.ts reads
 * each from a MESH_HTTP_* env var.
 */
export interface ConnectionLimits {
  /** HTTP/1.1: the request's headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** HTTP/1.1: the whole request (headers and body) must arrive within this; the answer may take longer. */
  requestTimeoutMs: number;
  /** An HTTP/1.1 keep-alive connection or an HTTP/2 session with no request open is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection must send its first bytes, and an HTTP/2 session open its first stream, within this. */
  preProtocolTimeoutMs: number;
  /** Connections open at once on the port; more are refused (closed on accept). */
  maxConnections: number;
  /** HTTP/2: streams one session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  http2MaxConcurrentStreams: number;
  /** HTTP/2: memory one session may hold in nghttp2, in megabytes (Node's unit). */
  http2MaxSessionMemoryMb: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // Longer than the 60 s idle timeout of common load balancers, so they close first.
  keepAliveTimeoutMs: 65_000,
  preProtocolTimeoutMs: 10_000,
  maxConnections: 2_048,
  http2MaxConcurrentStreams: 100,
  http2MaxSessionMemoryMb: 32,
};

/**
 * Draining on its own port, an idle HTTP/1.1 keep-alive connection stays open this long: a
 * request that its client sends meanwhile is answered (with `connection: close`) instead of
 * meeting a closed socket, which a client cannot tell from a failure (a POST is not retried).
 * With connections from the launcher, an idle one goes back to it instead (handBack), at once.
 */
const DRAIN_IDLE_GRACE_MS = 1_000;
/** Draining with connections from the launcher: how long to wait for its "draining-seen" before counting connections down. */
const HAND_OFF_SEEN_TIMEOUT_MS = 2_000;

/** How often Node checks HTTP/1.1 connections against the headers and request timeouts (its default, 30 s, would let a slowloris live 40 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

export interface DualProtocolServer {
  port: number;
  close(drainMs: number): Promise<void>;
}

/**
 * Where connections come from: "listen" binds host:port; "launcher" takes the sockets
 * `llm-mesh up` accepted on that port and hands over IPC (lib/runtime/hand-off.ts).
 */
export type ConnectionSource = "listen" | "launcher";

/**
 * One port for HTTP/1.1 (REST, SSE, Connect, gRPC-web) and cleartext
 * HTTP/2 (gRPC): the first bytes of each connection pick the server.
 */
export async function listenDualProtocol(
  host: string,
  port: number,
  h1Listener: http.RequestListener,
  h2Listener: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  source: ConnectionSource = "listen",
): Promise<DualProtocolServer> {
  // HTTP/1.1 sockets with the number of requests in flight on each, so a
  // drain can close idle keep-alive connections (after a grace) and busy ones when done.
  // Weak: a closed connection's socket must not stay reachable from here (a Map kept
  // every socket that ever carried a request, R5's RSS growth).
  const active = new WeakMap<net.Socket, number>();
  // bytesRead when the connection last had nothing in flight: unchanged means idle between requests.
  const idleAt = new WeakMap<net.Socket, number>();
  let draining = false;
  const h1 = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    (req, res) => {
      const socket = req.socket;
      active.set(socket, (active.get(socket) ?? 0) + 1);
      res.once("close", () => {
        const left = (active.get(socket) ?? 1) - 1;
        active.set(socket, left);
        if (left === 0) idleAt.set(socket, socket.bytesRead);
        // Its response may have gone out without `connection: close` (it began before the drain), so the
        // client may already be sending the next request on it: that one is still answered.
        if (draining && left === 0) retire(socket);
      });
      if (draining) res.setHeader("connection", "close");
      h1Listener(req, res);
    },
  );
  // h1 never listens itself (the front hands it sockets), so start the headers and request
  // timeout checks that Node otherwise starts on "listening".
  h1.emit("listening");
  const h2 = http2.createServer(
    { maxSessionMemory: limits.http2MaxSessionMemoryMb, settings: { maxConcurrentStreams: limits.http2MaxConcurrentStreams } },
    h2Listener,
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2Sockets = new WeakSet<object>();
  // Idle between two HTTP/1.1 requests: nothing in flight, nothing read since the last answer, all of it written,
  // and not ending (an answer with `connection: close` ends its connection).
  const handedBack = new WeakSet<net.Socket>();
  const idle = (socket: net.Socket): boolean =>
    !h2Sockets.has(socket) &&
    !handedBack.has(socket) &&
    socket.writable &&
    (active.get(socket) ?? 0) === 0 &&
    idleAt.get(socket) === socket.bytesRead &&
    socket.writableLength === 0;
  // Draining with connections from the launcher: an idle one goes back to it, for the successor. Node detaches
  // it from the HTTP server once sent and closes this process's descriptor (not the connection) on the ack.
  const handBack = (socket: net.Socket): void => {
    handedBack.add(socket);
    stopReading(socket);
    // Sent, it is already detached and this only lets its "close" listeners (the drain's count) run; not sent, it closes.
    process.send!({ type: HAND_OFF_RETURNED }, socket, () => socket.destroy());
  };
  // Draining: an HTTP/1.1 connection with nothing in flight goes back to the launcher if idle, or else closes after
  // the grace unless a request came meanwhile. Bytes read since the grace began mean a request is arriving that the
  // parser has not announced yet: wait again.
  const canHandBack = (socket: net.Socket): boolean => source === "launcher" && process.connected && idle(socket);
  const retire = (socket: net.Socket): void => {
    if (canHandBack(socket)) return handBack(socket);
    const readBefore = socket.bytesRead;
    setTimeout(() => {
      if (h2Sockets.has(socket) || (active.get(socket) ?? 0) > 0 || socket.destroyed) return;
      if (canHandBack(socket)) return handBack(socket);
      if (socket.bytesRead !== readBefore) return retire(socket);
      socket.destroySoon();
    }, DRAIN_IDLE_GRACE_MS).unref();
  };
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    closeWhenIdle(s, limits);
  });
  // Resolves the drain's wait once the last connection closed (connections handed over are not the front server's).
  let emptied: (() => void) | undefined;
  const accept = (socket: net.Socket, idleKeepAlive = false): void => {
    sockets.add(socket);
    // Nothing read yet: idle, as between two requests.
    idleAt.set(socket, socket.bytesRead);
    // Nothing sent yet: a connection that stays silent is dropped (one handed back between two requests
    // may stay silent as long as any idle keep-alive connection).
    const silent = setTimeout(() => socket.destroy(), idleKeepAlive ? limits.keepAliveTimeoutMs : limits.preProtocolTimeoutMs);
    socket.once("close", () => {
      clearTimeout(silent);
      sockets.delete(socket);
      if (sockets.size === 0) emptied?.();
    });
    socket.setNoDelay(true);
    socket.once("readable", () => {
      clearTimeout(silent);
      const head = (socket.read(Math.min(H2_PREFACE.length, socket.readableLength)) ?? socket.read()) as Buffer | null;
      if (!head) return socket.destroy();
      socket.unshift(head);
      const isH2 = head.length >= 3 && H2_PREFACE.subarray(0, head.length).equals(head.subarray(0, Math.min(head.length, H2_PREFACE.length)));
      if (isH2) h2Sockets.add(socket);
      (isH2 ? h2 : h1).emit("connection", socket);
    });
    // Reached a draining process (sent before the launcher read "draining"): handed back or closed too.
    if (draining) retire(socket);
  };
  const front = net.createServer(accept);
  front.maxConnections = limits.maxConnections;
  let launcherSawDrain: (() => void) | undefined;
  const handedOver = (message: { type?: string }, socket: unknown): void => {
    if (message?.type === HAND_OFF_DRAINING_SEEN) return launcherSawDrain?.();
    if (message?.type !== HAND_OFF_CONNECTION || !(socket instanceof net.Socket)) return;
    // Also while draining (sent before the launcher read "draining"): served, with `connection: close`.
    if (sockets.size >= limits.maxConnections) return void socket.destroy();
    accept(socket, (message as HandOffConnectionMessage).idleKeepAlive === true);
  };
  if (source === "launcher") {
    process.on("message", handedOver);
  } else {
    await new Promise<void>((resolve, reject) => {
      front.once("error", reject);
      front.listen(port, host, () => resolve());
    });
  }
  return {
    port: source === "launcher" ? port : (front.address() as AddressInfo).port,
    async close(drainMs: number) {
      draining = true;
      // Before anything closes: the launcher holds new connections from now on, and says when it stopped sending.
      const seen =
        source === "launcher" && process.send
          ? new Promise<void>((resolve) => {
              launcherSawDrain = resolve;
              setTimeout(resolve, HAND_OFF_SEEN_TIMEOUT_MS).unref();
              process.send!({ type: HAND_OFF_DRAINING });
            })
          : Promise.resolve();
      const closed =
        source === "launcher"
          ? seen.then(() => new Promise<void>((resolve) => (sockets.size === 0 ? resolve() : (emptied = resolve))))
          : new Promise<void>((resolve) => front.close(() => resolve()));
      for (const s of sessions) s.close();
      for (const socket of sockets) retire(socket);
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, drainMs);
      await closed;
      clearTimeout(timer);
      process.off("message", handedOver);
      // Stops the timeout checks (h1 was never bound, so close reports that; nothing to do).
      h1.close(() => {});
    },
  };
}

/**
 * Closes an HTTP/2 session that opens no stream within the pre-protocol
 * timeout (a client that sent only the preface, or never finished its
 * SETTINGS), and one whose streams are all done for the keep-alive timeout.
 */
function closeWhenIdle(session: http2.ServerHttp2Session, limits: ConnectionLimits): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => session.destroy(), limits.preProtocolTimeoutMs);
  session.on("stream", (stream) => {
    open++;
    clearTimeout(timer);
    timer = undefined;
    stream.once("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) timer = setTimeout(() => session.close(), limits.keepAliveTimeoutMs);
    });
  });
  session.once("close", () => clearTimeout(timer));
}
