import { Code, meshError } from "../../../lib/errors.js";
import type { Principal } from "../../../src/gen/mesh/auth/v1/auth_pb.js";
import type { PrincipalCache } from "./principal-cache.js";
import { bearerToken } from "./request-parsing.js";

/**
 * The principal of a request's bearer API key, for REST (the `Authorization` header) and the public gRPC service
 * (the `authorization` metadata) alike: Unauthenticated (401 invalid_api_key at the edge) when absent or malformed.
 */
export async function authenticateBearer(
  principals: PrincipalCache,
  value: string | null | undefined,
  signal: AbortSignal,
  where: "header" | "metadata",
): Promise<Principal> {
  const carrier = where === "header" ? "the Authorization header" : "the 'authorization' metadata";
  if (!value)
    throw meshError(Code.Unauthenticated, `You didn't provide an API key. Provide it in ${carrier} as 'Bearer YOUR_KEY'.`, { reason: "invalid_api_key" });
  const key = bearerToken(value);
  if (!key) throw meshError(Code.Unauthenticated, `Malformed ${carrier.replace("the ", "")}: expected 'Bearer YOUR_KEY'.`, { reason: "invalid_api_key" });
  return principals.authenticate(key, signal);
}
