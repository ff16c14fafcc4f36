import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";

/** The HTTP/2 connection preface a cleartext (h2c, prior knowledge) client sends first. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface DualProtocolServer {
  port: number;
  close(drainMs: number): Promise<void>;
}

/**
 * One port for HTTP/1.1 (REST, SSE, Connect, gRPC-web) and cleartext
 * HTTP/2 (gRPC): the first bytes of each connection pick the server.
 */
export async function listenDualProtocol(
  host: string,
  port: number,
  h1Listener: http.RequestListener,
  h2Listener: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): Promise<DualProtocolServer> {
  // HTTP/1.1 sockets with the number of requests in flight on each, so a
  // drain can close idle keep-alive connections at once and busy ones when done.
  const active = new Map<net.Socket, number>();
  let draining = false;
  const h1 = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const socket = req.socket;
    active.set(socket, (active.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const left = (active.get(socket) ?? 1) - 1;
      active.set(socket, left);
      if (draining && left === 0) socket.destroySoon();
    });
    if (draining) res.setHeader("connection", "close");
    h1Listener(req, res);
  });
  const h2 = http2.createServer({}, h2Listener);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2Sockets = new WeakSet<object>();
  const sessionSocket = (socket: net.Socket): boolean => h2Sockets.has(socket);
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(H2_PREFACE.length, socket.readableLength)) ?? socket.read();
      if (!head) return socket.destroy();
      socket.unshift(head);
      const isH2 = head.length >= 3 && H2_PREFACE.subarray(0, head.length).equals(head.subarray(0, Math.min(head.length, H2_PREFACE.length)));
      if (isH2) h2Sockets.add(socket);
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(port, host, () => resolve());
  });
  return {
    port: (front.address() as AddressInfo).port,
    async close(drainMs: number) {
      draining = true;
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const s of sessions) s.close();
      for (const socket of sockets) if (!sessionSocket(socket) && !(active.get(socket) ?? 0)) socket.destroySoon();
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, drainMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
