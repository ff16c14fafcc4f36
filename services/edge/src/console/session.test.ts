import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { signConsoleToken } from "../../../auth/src/console-token.js";
import { clearedCookie, csrfMatches, csrfTokenOf, isSameOrigin, sessionCookie, sessionToken } from "./session.js";

const req = (headers: Record<string, string>, encrypted = false) => ({ headers, socket: { encrypted } }) as unknown as IncomingMessage;
const TOKEN = signConsoleToken({ account: "acme", expiresAtMs: 10_000 }, "mesh-admin-test");

describe("console session", () => {
  it("reads the session token from its cookie among others, and nothing that is not a console token", () => {
    expect(sessionToken(req({ cookie: `a=1; mesh_console=${TOKEN}; b=2` }))).toBe(TOKEN);
    expect(sessionToken(req({ cookie: "mesh_console=sk-mesh-abc" }))).toBeUndefined();
    expect(sessionToken(req({}))).toBeUndefined();
  });

  it("sets HttpOnly, SameSite=Strict, Path=/console, a Max-Age to the token's expiry, and Secure only over TLS", () => {
    expect(sessionCookie(req({}), TOKEN, 10_000, 4_000)).toBe(`mesh_console=${TOKEN}; Path=/console; Max-Age=6; HttpOnly; SameSite=Strict`);
    expect(sessionCookie(req({}, true), TOKEN, 10_000, 4_000)).toMatch(/; Secure$/);
    expect(sessionCookie(req({ "x-forwarded-proto": "https" }), TOKEN, 10_000, 4_000)).toMatch(/; Secure$/);
    expect(clearedCookie(req({}))).toBe("mesh_console=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict");
  });

  it("accepts a write only with the session's own CSRF token", () => {
    const csrf = csrfTokenOf(TOKEN);
    expect(csrf).not.toContain(TOKEN.slice(-20));
    expect(csrfMatches(req({ "x-csrf-token": csrf }), TOKEN)).toBe(true);
    expect(csrfMatches(req({ "x-csrf-token": csrfTokenOf(`${TOKEN}x`) }), TOKEN)).toBe(false);
    expect(csrfMatches(req({}), TOKEN)).toBe(false);
  });

  it("tells our own origin from another site's", () => {
    expect(isSameOrigin(req({ host: "mesh:8080", origin: "http://mesh:8080", "sec-fetch-site": "same-origin" }))).toBe(true);
    expect(isSameOrigin(req({ host: "mesh:8080" }))).toBe(true);
    expect(isSameOrigin(req({ host: "mesh:8080", origin: "http://evil:8080" }))).toBe(false);
    expect(isSameOrigin(req({ host: "mesh:8080", origin: "null" }))).toBe(false);
    expect(isSameOrigin(req({ host: "mesh:8080", "sec-fetch-site": "same-site" }))).toBe(false);
  });
});
