import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HAND_OFF_CONNECTION, HAND_OFF_DRAINING, HAND_OFF_DRAINING_SEEN } from "../../lib/runtime/index.js";
import { ConnectionHandOff } from "./connection-hand-off.js";

/** A stand-in front process: answers each handed-over connection with its pid; on "drain" says draining, and reports the launcher's answer. */
const FRONT_SCRIPT = `
process.on("message", (m, socket) => {
  if (m === "drain") return process.send({ type: "${HAND_OFF_DRAINING}" });
  if (m?.type === "${HAND_OFF_DRAINING_SEEN}") return process.send({ type: "seen" });
  if (m?.type !== "${HAND_OFF_CONNECTION}" || !socket) return;
  socket.end(String(process.pid));
});
setTimeout(() => process.send({ type: "listening" }), Number(process.env.READY_AFTER_MS));
`;

/** Connects and resolves with what the server wrote before closing. */
function answer(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d) => (text += d.toString()));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

describe("connection hand-off (llm-mesh up owns the public port)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-hand-off-"));
  const script = path.join(dir, "front.cjs");
  writeFileSync(script, FRONT_SCRIPT);
  const children: ChildProcess[] = [];
  const front = (readyAfterMs: number): ChildProcess => {
    const child = fork(script, [], { env: { READY_AFTER_MS: String(readyAfterMs) }, stdio: ["ignore", "ignore", "inherit", "ipc"] });
    children.push(child);
    return child;
  };
  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds connections while no front process listens and hands them to the next one, through a drain and a restart", async () => {
    const handOff = await ConnectionHandOff.listen("127.0.0.1", 0);
    try {
      // Nobody listens yet: the connection is accepted and waits.
      const early = answer(handOff.port);
      const first = front(300);
      handOff.attach(first);
      expect(await early).toBe(String(first.pid));
      expect(await answer(handOff.port)).toBe(String(first.pid));

      // Draining: new connections wait for the successor.
      const seen = new Promise((resolve) => first.on("message", (m: { type?: string }) => m?.type === "seen" && resolve(undefined)));
      first.send("drain");
      // The launcher answers "draining" once it sends no more sockets there.
      await seen;
      const during = answer(handOff.port);
      await new Promise((r) => setTimeout(r, 200));
      first.kill("SIGKILL");
      const second = front(300);
      handOff.attach(second);
      expect(await during).toBe(String(second.pid));
    } finally {
      await handOff.close();
    }
  });

  it("closes the connections it still holds when it closes, instead of leaving them hanging", async () => {
    const handOff = await ConnectionHandOff.listen("127.0.0.1", 0);
    const held = answer(handOff.port);
    await new Promise((r) => setTimeout(r, 100));
    await handOff.close();
    expect(await held).toBe("");
  });
});
