/** The account console served by the edge at /console/. */
export { ConsoleHandler, CONSOLE_PREFIX, CONTENT_SECURITY_POLICY } from "./console-handler.js";
export type { ConsoleDeps } from "./console-handler.js";
export { adminRouteTable } from "./admin-routes.js";
export type { AdminRoutes, AdminRouteSource } from "./admin-routes.js";
export { SESSION_COOKIE, CSRF_HEADER } from "./session.js";
export { usageChartSvg, windowDays, USAGE_WINDOW_DAYS } from "./usage-charts.js";
