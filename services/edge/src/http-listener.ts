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
  const h1 = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, h1Listener);
  const h2 = http2.createServer({}, h2Listener);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
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
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      h1.closeIdleConnections();
      for (const s of sessions) s.close();
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, drainMs);
      const idle = setInterval(() => h1.closeIdleConnections(), 100);
      await closed;
      clearInterval(idle);
      clearTimeout(timer);
    },
  };
}
