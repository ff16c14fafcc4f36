import * as path from "node:path";
import { ConfigError } from "../lib/runtime/index.js";
import { readAdminToken } from "../services/auth/src/admin-token.js";
import { UsageError } from "./args.js";

/** The edge the CLI talks to when neither --url nor MESH_URL says otherwise. */
export const DEFAULT_MESH_URL = "http://127.0.0.1:8080";
const REQUEST_TIMEOUT_MS = 10_000;

/** Flags every admin command takes. */
export const ADMIN_FLAGS = {
  url: { type: "string" },
  "data-dir": { type: "string" },
  json: { type: "boolean" },
} as const;

export const ADMIN_FLAGS_USAGE = `  --url       the mesh's edge (env MESH_URL, default ${DEFAULT_MESH_URL})
  --data-dir  where the admin token file is (env MESH_DATA_DIR, default .mesh); env MESH_ADMIN_TOKEN wins
  --json      print JSON`;

/** A failed admin call: printed without a stack trace, exit code 1. */
export class AdminRequestError extends ConfigError {}

/**
 * A small client of the edge's /admin/v1 REST API, authorised by the admin
 * token from MESH_ADMIN_TOKEN or `<data dir>/admin-token`.
 */
export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** Builds a client from the command's flags and the environment. */
  static async fromFlags(values: { url?: string; "data-dir"?: string }): Promise<AdminClient> {
    const url = (values.url ?? process.env.MESH_URL ?? DEFAULT_MESH_URL).replace(/\/+$/, "");
    const dataDir = values["data-dir"] ?? process.env.MESH_DATA_DIR ?? ".mesh";
    const token = process.env.MESH_ADMIN_TOKEN || (await readAdminToken(dataDir));
    if (!token) throw new ConfigError(`no admin token: set MESH_ADMIN_TOKEN or pass --data-dir of the mesh (looked for ${path.join(dataDir, "admin-token")})`);
    return new AdminClient(url, token);
  }

  async request<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/admin/v1/${route}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new AdminRequestError(`cannot reach the mesh at ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AdminRequestError(`unexpected answer from ${this.baseUrl} (HTTP ${res.status})`);
    }
    if (!res.ok) {
      const message = (json as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`;
      throw new AdminRequestError(`${message} (HTTP ${res.status})`);
    }
    return json as T;
  }
}

/** A duration flag: "90s", "10m", "12h", "30d", "500ms". */
export function durationFlag(name: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new UsageError(`--${name} must be a duration like 90s, 10m, 12h or 30d, got "${value}"`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

/** Prints rows as aligned columns. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}

/** Prints a value as JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
