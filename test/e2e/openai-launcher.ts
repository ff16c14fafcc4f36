import { readFileSync } from "node:fs";
import * as path from "node:path";
import { freePort } from "../../cli/up/launcher.js";
import { startLauncher } from "../support/launcher-process.js";

/** The bootstrap key every e2e mesh accepts. */
export const E2E_API_KEY = "sk-e2e-openai-0123456789abcdefghij";

/** A mesh started with `llm-mesh up` for one test file. */
export interface LaunchedMesh {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  /** `${url}/v1`, the OpenAI base URL. */
  baseURL: string;
  apiKey: string;
  /** host:port of each service, from the launcher's "listening" lines (e.g. "shard:tiny-llama/local"). */
  addresses: Map<string, string>;
  /** Everything the launcher printed, for failure messages. */
  output: string[];
  /** The service token the launcher generated (data dir's service-token), for tests that call internal gRPC. */
  serviceToken: string;
  stop(): Promise<void>;
}

export { freePort };

/** Runs `llm-mesh up` on a free port with the tiny model (see startLauncher) and waits until it is ready. */
export async function launchMesh(env: Record<string, string> = {}): Promise<LaunchedMesh> {
  const mesh = await startLauncher({ apiKey: E2E_API_KEY, env });
  const serviceToken = readFileSync(path.join(mesh.dataDir, "service-token"), "utf8").trim();
  return { url: mesh.url, baseURL: `${mesh.url}/v1`, apiKey: E2E_API_KEY, addresses: mesh.addresses, output: mesh.output, serviceToken, stop: mesh.stop };
}

/** The shard's address of the default tiny model. */
export function shardAddress(mesh: LaunchedMesh): string {
  for (const [name, address] of mesh.addresses) if (name.startsWith("shard:")) return address;
  throw new Error("no shard address in the launcher output");
}

/** POSTs JSON to the mesh and returns status, headers and the parsed (or raw) body. */
export async function postJson(mesh: LaunchedMesh, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${mesh.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${mesh.apiKey}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, any> };
}

/** Reads an SSE body into its `data:` payloads. */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}
