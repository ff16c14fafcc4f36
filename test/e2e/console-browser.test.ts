/// <reference lib="dom" />
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import Database from "libsql";
import OpenAI from "openai";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_SECURITY_POLICY } from "../../services/edge/src/console/index.js";
import { startMeshProcess, TEST_API_KEY } from "../support/mesh-process.js";
import type { MeshProcess } from "../support/mesh-process.js";
import { until } from "../support/until.js";

const run = promisify(execFile);
const CHROMIUM = "/usr/bin/chromium";
/** The flags that make Debian's Chromium quiet and offline in a container. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Screenshots land here (ignored by git). */
const OUTPUT_DIR = path.resolve("test-results/console", process.env.MESH_TOPOLOGY || "split");
const MODEL = "chat-model";
const CATALOG = `
models:
  - name: ${MODEL}
    backends:
      - { name: local, engine: sim, decode_ms_per_token: 1, prefill_tokens_per_s: 100000 }
  - name: ab-model
    backends:
      - { name: fast, engine: sim, decode_ms_per_token: 1, prefill_tokens_per_s: 100000 }
      - { name: slow, engine: sim, decode_ms_per_token: 3, prefill_tokens_per_s: 100000 }
experiments:
  - name: fast-vs-slow
    model: ab-model
    unit: user
    arms:
      - { backend: fast, weight: 50 }
      - { backend: slow, weight: 50 }
`;

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err.status ?? -1;
    throw err;
  }
}

describe("the account console in a real Chromium against `llm-mesh up`", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-console-"));
  const profileDir = mkdtempSync(path.join(tmpdir(), "mesh-console-chromium-"));
  let mesh: MeshProcess;
  let context: BrowserContext;
  let page: Page;
  let acmeToken = "";
  let betaKeyId = "";
  /** Every URL the browser asked for. */
  const requested: string[] = [];

  const cli = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(process.execPath, ["bin/llm-mesh.js", ...args, "--url", mesh.url, "--data-dir", dataDir], {
      env: { ...process.env, MESH_ADMIN_TOKEN: "" },
    });
    return stdout;
  };
  const chat = (apiKey: string, model = MODEL, user?: string) =>
    new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey, maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello there" }],
      max_tokens: 4,
      user,
    });
  const requestLogs = (account: string): number => {
    const db = new Database(path.join(dataDir, "mesh.db"), { readonly: true });
    try {
      return Number((db.prepare("SELECT count(*) AS n FROM request_logs WHERE account_id = ?").get(account) as { n: number }).n);
    } finally {
      db.close();
    }
  };
  const accountRequests = async (account: string): Promise<number> => {
    const usage = JSON.parse(await cli("usage", "--account", account, "--by", "model", "--json")) as Array<{ requests: number }>;
    return usage.reduce((n, r) => n + r.requests, 0);
  };
  const shot = (name: string) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), fullPage: true });
  const signIn = async (token: string) => {
    await page.goto(`${mesh.url}/console/`);
    await page.locator("#token").fill(token);
    await page.locator("#token").press("Enter");
    await page.waitForURL(`${mesh.url}/console/`);
    await page.locator("#signout").waitFor({ state: "visible" });
  };
  const axeSerious = async () => {
    const source = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
    // Evaluated through the DevTools protocol, so the page's CSP (no inline or eval'd script) does not apply.
    await page.evaluate(source);
    const violations = await page.evaluate(async () => {
      const result = await (
        globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } }
      ).axe.run();
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  };

  beforeAll(async () => {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const config = path.join(dataDir, "mesh.yaml");
    writeFileSync(config, CATALOG);
    mesh = await startMeshProcess({ dataDir, args: ["--config", config] });
    await cli("accounts", "create", "acme", "--name", "Acme");
    await cli("accounts", "create", "beta");
    betaKeyId = (JSON.parse(await cli("keys", "create", "--account", "beta", "--name", "beta-secret", "--json")) as { id: string }).id;
    acmeToken = (await cli("console-token", "--account", "acme", "--ttl", "1h")).trim();
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      acceptDownloads: true,
      permissions: ["clipboard-read", "clipboard-write"],
      viewport: { width: 1100, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (r) => requested.push(r.url()));
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await mesh?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  });

  it("prints an account token with `llm-mesh console-token`", () => {
    expect(acmeToken).toMatch(/^mesh-console-[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });

  it("serves every console response with a strict CSP and loads nothing from another origin", async () => {
    const res = await page.goto(`${mesh.url}/console/`);
    const headers = res!.headers();
    expect(headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe-inline");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    for (const p of ["/console/assets/console.js", "/console/assets/console.css", "/console/session", "/console/api/keys", "/console/nope"]) {
      expect((await fetch(`${mesh.url}${p}`)).headers.get("content-security-policy"), p).toBe(CONTENT_SECURITY_POLICY);
    }
    await page.locator("#token").waitFor();
    expect(await axeSerious()).toEqual([]);
    await shot("signin");
  });

  it("refuses a wrong token at sign-in and says so", async () => {
    await page.locator("#token").fill("mesh-console-bm9wZQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    await page.locator("button[type=submit]", { hasText: "Sign in" }).click();
    await page.locator("#signin-error").waitFor({ state: "visible" });
    expect((await context.cookies()).filter((c) => c.name === "mesh_console")).toEqual([]);
  });

  it("signs in with an account token (keyboard only) into an HttpOnly, SameSite=Strict cookie; no secret in storage or the URL", async () => {
    await signIn(acmeToken);
    expect(await page.locator("#who").textContent()).toBe("Signed in as account acme");
    const [cookie] = (await context.cookies()).filter((c) => c.name === "mesh_console");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", secure: false, path: "/console" });
    expect(cookie.value).toBe(acmeToken);
    expect(await page.evaluate(() => document.cookie)).toBe("");
    expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
    expect(page.url()).toBe(`${mesh.url}/console/`);
    // Secure when the request came over TLS (a proxy's x-forwarded-proto).
    const tls = await fetch(`${mesh.url}/console/session`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-proto": "https" },
      body: JSON.stringify({ token: acmeToken }),
    });
    expect(tls.headers.get("set-cookie")).toMatch(/^mesh_console=mesh-console-[^;]+; Path=\/console; Max-Age=\d+; HttpOnly; SameSite=Strict; Secure$/);
  });

  let key = "";
  it("creates a key, shows it once with a copy button, and the key works with the openai SDK", async () => {
    await page.locator("#key-name").fill("browser-key");
    await page.locator("button", { hasText: "Create key" }).click();
    await page.locator("#new-key").waitFor({ state: "visible" });
    expect(await page.locator("#new-key").textContent()).toContain("you will not see it again");
    key = await page.locator("#new-key-value").inputValue();
    expect(key).toMatch(/^sk-mesh-/);
    await page.locator("#copy-key").click();
    await page.locator("#copy-status", { hasText: "Copied." }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
    const reply = await chat(key);
    expect(reply.usage?.completion_tokens).toBe(4);
    // The list never shows the secret again.
    await page.reload();
    await page.locator("#keys-table tbody tr", { hasText: "browser-key" }).waitFor();
    expect(await page.locator("body").textContent()).not.toContain(key.slice(-20));
    await shot("keys");
  });

  it("shows the request in usage: charts, tables and a CSV download", async () => {
    await until(async () => (await accountRequests("acme")) >= 1, 15_000, 100);
    await page.reload();
    const modelRow = page.locator("#usage-model-table tbody tr", { hasText: MODEL });
    await modelRow.waitFor();
    expect((await modelRow.locator("td").allTextContents())[0]).toBe("1");
    const keyCells = await page.locator("#keys-table tbody tr", { hasText: "browser-key" }).locator("td").allTextContents();
    expect(keyCells[3]).toBe("1");
    expect(keyCells[2]).toMatch(new RegExp(`^${new Date().toISOString().slice(0, 10)} \\d{2}:\\d{2} UTC$`));
    for (const id of ["chart-day-requests", "chart-day-tokens", "chart-model-tokens"]) {
      await until(() => page.locator(`#${id}`).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 10_000, 50);
    }
    const svg = await (await context.request.get(`${mesh.url}/console/charts/usage.svg?by=model&metric=tokens`)).text();
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain(`>${MODEL}<`);
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#csv").click()]);
    const csv = readFileSync(await download.path(), "utf8");
    expect(csv.split("\n")[0]).toBe("group_by,group,requests,prompt_tokens,completion_tokens,total_tokens");
    expect(csv).toMatch(new RegExp(`^model,${MODEL},1,\\d+,4,\\d+$`, "m"));
    expect(csv).toMatch(/^day,\d{4}-\d{2}-\d{2},1,/m);
    await page.locator("#usage").screenshot({ path: path.join(OUTPUT_DIR, "usage.png") });
  });

  it("rotates without grace (old secret refused, new one works), then revokes after a confirmation (refused)", async () => {
    await page.locator("#grace").selectOption("0");
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.locator("button", { hasText: "Rotate" }).first().click();
    await page.locator("#new-key-title", { hasText: "new secret" }).waitFor();
    const rotated = await page.locator("#new-key-value").inputValue();
    expect(rotated).not.toBe(key);
    expect(rotated.split("-").slice(0, 3)).toEqual(key.split("-").slice(0, 3));
    await until(async () => (await statusOf(chat(key))) === 401, 10_000, 100);
    expect(await statusOf(chat(rotated))).toBe(200);
    await page.locator("#keys-table tbody tr", { hasText: "browser-key" }).getByRole("button", { name: "Revoke key browser-key" }).click();
    await page.locator("#keys-table tbody tr", { hasText: "browser-key" }).locator(".state", { hasText: "revoked" }).waitFor();
    expect(dialogs.some((m) => m.startsWith('Revoke key "browser-key"'))).toBe(true);
    await until(async () => (await statusOf(chat(rotated))) === 401, 10_000, 100);
  });

  it("switches retention off: afterwards no request log is stored for the account", async () => {
    await until(() => requestLogs("acme") >= 1, 10_000, 100);
    await page.reload();
    await page.locator("#oldest-log", { hasText: "will be deleted on" }).waitFor();
    await page.locator("#privacy").screenshot({ path: path.join(OUTPUT_DIR, "privacy.png") });
    await page.locator("#retention-off").check();
    await page.locator("#retention-form button[type=submit]").click();
    await page.locator("#retention-meaning", { hasText: "never stored" }).waitFor();
    const logsBefore = requestLogs("acme");
    const requestsBefore = await accountRequests("acme");
    await page.locator("#key-name").fill("after-opt-out");
    await page.locator("button", { hasText: "Create key" }).click();
    await page.locator("#new-key-title", { hasText: "after-opt-out" }).waitFor();
    expect(await statusOf(chat(await page.locator("#new-key-value").inputValue()))).toBe(200);
    await until(async () => (await accountRequests("acme")) === requestsBefore + 1, 15_000, 100);
    expect(requestLogs("acme")).toBe(logsBefore);
  });

  it("scopes an account session to its account: another account's keys and usage stay out of reach", async () => {
    const rows = await page.locator("#keys-table tbody tr").allTextContents();
    expect(rows.join("\n")).not.toContain("beta-secret");
    const answers = await page.evaluate(async (betaKey) => {
      const session = (await (await fetch("/console/session")).json()) as { csrf_token: string };
      const write = { method: "POST", headers: { "x-csrf-token": session.csrf_token } };
      return {
        keys: (await fetch("/console/api/keys?account=beta")).status,
        usage: (await fetch("/console/api/usage?account=beta")).status,
        revoke: (await fetch(`/console/api/keys/${betaKey}/revoke`, write)).status,
        accounts: ((await (await fetch("/console/api/accounts")).json()) as { data: Array<{ id: string }> }).data.map((a) => a.id),
        experiments: (await fetch("/console/api/experiments")).status,
        tokens: (await fetch("/console/api/console-tokens", { ...write, headers: { ...write.headers, "content-type": "application/json" }, body: "{}" }))
          .status,
      };
    }, betaKeyId);
    expect(answers).toEqual({ keys: 403, usage: 403, revoke: 404, accounts: ["acme"], experiments: 401, tokens: 403 });
  });

  it("refuses console writes without the page's CSRF token or from another origin", async () => {
    const cookie = `mesh_console=${acmeToken}`;
    const session = (await (await fetch(`${mesh.url}/console/session`, { headers: { cookie } })).json()) as { csrf_token: string };
    const post = (headers: Record<string, string>) =>
      fetch(`${mesh.url}/console/api/keys`, {
        method: "POST",
        headers: { cookie, "content-type": "application/json", ...headers },
        body: JSON.stringify({ name: "csrf" }),
      });
    expect((await post({})).status).toBe(403);
    expect((await post({ "x-csrf-token": "x".repeat(43) })).status).toBe(403);
    expect((await post({ "x-csrf-token": session.csrf_token, origin: "https://evil.example" })).status).toBe(403);
    expect((await post({ "x-csrf-token": session.csrf_token, "sec-fetch-site": "cross-site" })).status).toBe(403);
    expect((await post({ "x-csrf-token": session.csrf_token })).status).toBe(201);
    // Sign-in from another site is refused too.
    const foreign = await fetch(`${mesh.url}/console/session`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example" },
      body: JSON.stringify({ token: acmeToken }),
    });
    expect(foreign.status).toBe(403);
  });

  it("passes axe with no serious violations and reads at 360 px without sideways scrolling", async () => {
    await page.reload();
    await page.locator("#keys-table tbody tr").first().waitFor();
    expect(await axeSerious()).toEqual([]);
    await page.setViewportSize({ width: 360, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await shot("narrow-360");
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it("signs out: the cookie is cleared and the API refuses the old session", async () => {
    await page.locator("#signout").click();
    await page.locator("#token").waitFor({ state: "visible" });
    expect((await context.cookies()).filter((c) => c.name === "mesh_console")).toEqual([]);
    expect((await context.request.get(`${mesh.url}/console/api/keys`)).status()).toBe(401);
  });

  it("signs the admin in (without putting the admin token in the cookie) and shows each experiment's report and plot", async () => {
    for (let i = 0; i < 12; i++) expect((await chat(TEST_API_KEY, "ab-model", `user-${i}`)).usage?.completion_tokens).toBe(4);
    const adminToken = readFileSync(path.join(dataDir, "admin-token"), "utf8").trim();
    await signIn(adminToken);
    expect(await page.locator("#who").textContent()).toBe("Signed in as admin");
    const [cookie] = (await context.cookies()).filter((c) => c.name === "mesh_console");
    expect(cookie.value).toMatch(/^mesh-console-/);
    expect(cookie.value).not.toContain(adminToken);
    const report = page.locator("#experiment-list pre").first();
    await report.waitFor();
    const text = (await report.textContent())!;
    const { stdout } = await run(process.execPath, ["bin/llm-mesh.js", "experiments", "report", "fast-vs-slow", "--url", mesh.url], {
      env: { ...process.env, MESH_ADMIN_TOKEN: adminToken },
    });
    // The same report as the CLI's, but for the instant it was computed at.
    const instant = (t: string) => t.trim().replace(/ at \d{4}-\d{2}-\d{2}T[\d:.]+Z/, " at T");
    expect(instant(text)).toBe(instant(stdout));
    expect(text).toMatch(/SRM|sample ratio/i);
    expect(text).toContain("fast");
    expect(text).toContain("slow");
    await until(
      () =>
        page
          .locator("#experiment-list img")
          .first()
          .evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0),
      10_000,
      50,
    );
    // The admin picks an account: beta's key is listed.
    await page.locator("#account").selectOption("beta");
    await page.locator("#keys-table tbody tr", { hasText: "beta-secret" }).waitFor();
    expect(await axeSerious()).toEqual([]);
    await page.locator("#experiments").screenshot({ path: path.join(OUTPUT_DIR, "experiments.png") });
  });

  it("asked for nothing outside the mesh's own origin", () => {
    const foreign = requested.filter((u) => !u.startsWith(`${mesh.url}/`) && !u.startsWith("blob:") && !u.startsWith("data:"));
    expect(foreign).toEqual([]);
    expect(requested.length).toBeGreaterThan(10);
  });
});
