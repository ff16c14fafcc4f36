import type { IncomingMessage, ServerResponse } from "node:http";
import FindMyWay from "find-my-way";
import type { HTTPMethod } from "find-my-way";
import { HttpError } from "../openai/errors.js";

/** How an admin API routes one request: the case name from its table, the path's params and the query. */
export type AdminRouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  rc: { params: Record<string, string | undefined>; query: URLSearchParams },
) => Promise<void>;

/** One admin API: its route table (method, path, case) and its handler. */
export interface AdminRouteSource {
  routes: ReadonlyArray<readonly [HTTPMethod, string, string]>;
  handle: AdminRouteHandler;
}

/** Serves an admin URL (`/admin/v1/…`) for the console, as the edge would. */
export type AdminRoutes = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

/**
 * The admin APIs' own route tables (ADMIN_ROUTES, EXPERIMENT_ROUTES), looked
 * up for the console's `/console/api/…` calls: the same table and handlers
 * the edge serves under /admin/v1, so the page cannot reach anything else.
 */
export function adminRouteTable(sources: readonly AdminRouteSource[]): AdminRoutes {
  const router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 256 });
  for (const { routes, handle } of sources) {
    for (const [method, path, route] of routes) {
      router.on(method, path, ((
        req: IncomingMessage,
        res: ServerResponse,
        params: Record<string, string | undefined>,
        _store: unknown,
        query: URLSearchParams,
      ) => handle(req, res, route, { params, query })) as never);
    }
  }
  return async (req, res, url) => {
    const found = router.find(req.method as HTTPMethod, url.pathname);
    if (!found) throw new HttpError(404, `Unknown console API URL: ${req.method} ${url.pathname}`, "invalid_request_error", null, "unknown_url");
    await (
      found.handler as unknown as (
        req: IncomingMessage,
        res: ServerResponse,
        params: Record<string, string | undefined>,
        store: unknown,
        query: URLSearchParams,
      ) => Promise<void>
    )(req, res, found.params, undefined, url.searchParams);
  };
}
