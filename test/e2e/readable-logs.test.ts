import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../cli/up/launcher.js";
import { TEST_API_KEY } from "../support/mesh-process.js";
import { until } from "../support/until.js";

/** Strips ANSI colour codes. */
// eslint-disable-next-line no-control-regex -- ESC is the byte an ANSI colour sequence starts with
const plain = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, "").replace(/\r/g, "");

describe("llm-mesh up on a pseudo-terminal: readable log lines", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "mesh-pty-"));
  let child: ChildProcess;
  let output = "";
  let url = "";

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // util-linux `script` runs the launcher with a pty as its stdout, as a terminal would.
    const command = `exec ${process.execPath} bin/llm-mesh.js up --port ${port} --host 127.0.0.1 --data-dir ${dataDir}`;
    child = spawn("script", ["-qfec", command, "/dev/null"], {
      env: { ...process.env, MESH_BOOTSTRAP_API_KEY: TEST_API_KEY, LOG_LEVEL: "info", LOG_FORMAT: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    await until(() => plain(output).includes("llm-mesh is ready"), 90_000, 100);
  });

  afterAll(async () => {
    if (child?.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      // The launcher is script's child: stop it as Ctrl-C would.
      const launcher = execFileSync("ps", ["-o", "pid=", "--ppid", String(child.pid)], { encoding: "utf8" })
        .trim()
        .split(/\s+/)
        .map(Number)
        .find((n) => n > 0);
      if (launcher) process.kill(launcher, "SIGTERM");
      else child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("prints each service's events as time, level, service, message and fields, never JSON", async () => {
    const text = plain(output);
    expect(text).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}edge +listening port=\d+$/m);
    expect(text).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}router +listening port=\d+$/m);
    expect(text).not.toMatch(/^\S*\s*\{"level":/m);
  });

  it("prints one access line per request with method, path, status, time, model, backend and tokens", async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-llama", messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id")!;
    await until(() => plain(output).includes(`requestId=${requestId}`), 10_000, 50);
    const line = plain(output)
      .split("\n")
      .find((l) => l.includes(`requestId=${requestId}`))!;
    expect(line).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}edge +request POST \/v1\/chat\/completions 200 [\d.]+ms requestId=\S+ model=tiny-llama backend=local promptTokens=\d+ completionTokens=[1-3]/,
    );
    expect(plain(output)).not.toContain(TEST_API_KEY);
  });
});
