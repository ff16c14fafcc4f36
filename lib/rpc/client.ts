import type { DescService } from "@bufbuild/protobuf";
import type { Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

/** Ping an idle connection this often so a dead peer is noticed. */
const CLIENT_PING_INTERVAL_MS = 15_000;
const CLIENT_PING_TIMEOUT_MS = 5_000;

const transports = new Map<string, Transport>();

/** One shared HTTP/2 transport per address ("host:port" or a URL). */
export function grpcTransport(address: string): Transport {
  const baseUrl = address.includes("://") ? address : `http://${address}`;
  let transport = transports.get(baseUrl);
  if (!transport) {
    transport = createGrpcTransport({
      baseUrl,
      pingIntervalMs: CLIENT_PING_INTERVAL_MS,
      pingTimeoutMs: CLIENT_PING_TIMEOUT_MS,
    });
    transports.set(baseUrl, transport);
  }
  return transport;
}

/** A typed gRPC client for `service` at `address`. */
export function grpcClient<T extends DescService>(service: T, address: string): Client<T> {
  return createClient(service, grpcTransport(address));
}
