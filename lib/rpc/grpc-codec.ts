import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { asConnectError } from "../errors.js";

/**
 * grpc-js service definitions built from protobuf-es descriptors, so the
 * generated protobuf-es code is the only codegen (no protoc-gen-grpc-js).
 */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methods) definition[method.localName] = methodDefinition(method);
  return definition;
}

export function methodDefinition(method: DescMethod): grpc.MethodDefinition<object, object> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (m: object) => Buffer.from(toBinary(method.input, asMessage(method.input, m))),
    requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
    responseSerialize: (m: object) => Buffer.from(toBinary(method.output, asMessage(method.output, m))),
    responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
  };
}

/** A message as is, or one built from an init object (connect lets handlers return either). */
export function asMessage<D extends DescMessage>(schema: D, value: object): MessageShape<D> {
  return "$typeName" in value ? (value as MessageShape<D>) : create(schema, value as never);
}

/** gRPC metadata → fetch Headers (text values only). */
export function metadataToHeaders(metadata: grpc.Metadata | undefined): Headers {
  const headers = new Headers();
  if (!metadata) return headers;
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === "string") headers.set(key, value);
  }
  return headers;
}

/** fetch Headers → gRPC metadata. */
export function headersToMetadata(headers: Headers | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  headers?.forEach((value, key) => metadata.set(key, value));
  return metadata;
}

/** A grpc-js status error → ConnectError (gRPC status numbers are Connect's Code numbers); anything else as `asConnectError`. */
export function toConnectError(err: unknown): ConnectError {
  const status = err as Partial<grpc.ServiceError> | undefined;
  if (!(err instanceof ConnectError) && status && typeof status.code === "number" && status.code !== grpc.status.OK) {
    return new ConnectError(status.details ?? "", status.code as number, metadataToHeaders(status.metadata));
  }
  return asConnectError(err);
}

/** Anything a handler threw → the status grpc-js sends. Unexpected errors say only "internal error". */
export function toStatus(err: unknown): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  const error = asConnectError(err);
  return { code: error.code as number, details: error.rawMessage, metadata: headersToMetadata(error.metadata) };
}
