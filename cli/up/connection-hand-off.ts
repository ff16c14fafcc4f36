import * as net from "node:net";
import type { AddressInfo } from "node:net";
import type { ChildProcess } from "node:child_process";
import { HAND_OFF_CONNECTION, HAND_OFF_DRAINING, HAND_OFF_DRAINING_SEEN, HAND_OFF_RETURNED, stopReading } from "../../lib/runtime/index.js";
import type { HandOffConnectionMessage } from "../../lib/runtime/index.js";

/** Connections held while no front process accepts; more are closed at once (the edge's own maxConnections default). */
const MAX_HELD_CONNECTIONS = 2_048;
/** A connection held longer than this (no front process came back) is closed. */
const MAX_HOLD_MS = 60_000;

interface Held {
  socket: net.Socket;
  timer: NodeJS.Timeout;
  /** Handed back by a draining front process between two requests (lib/runtime/hand-off.ts). */
  idleKeepAlive: boolean;
}

/**
 * The public listening socket of `llm-mesh up`, owned by the launcher rather than by the front
 * process (edge in split, core in combined), as `node:cluster`'s primary owns its workers'.
 * The launcher accepts each connection without reading it (`pauseOnConnect`) and hands it over
 * IPC to the front process that said it listens; while none does (it is restarting, or
 * draining after SIGTERM) connections wait here, so a restart of the edge delays new
 * connections instead of refusing them. A draining front process serves what reached it before
 * the launcher answered its "draining", and hands its idle keep-alive connections back, which go
 * to the successor like new ones: a client never meets a connection closed under it
 * (lib/runtime/hand-off.ts).
 */
export class ConnectionHandOff {
  #front: ChildProcess | undefined;
  readonly #held: Held[] = [];
  #closed = false;

  private constructor(private readonly server: net.Server) {}

  /** Listens on host:port (0: a free port). */
  static async listen(host: string, port: number): Promise<ConnectionHandOff> {
    const server = net.createServer({ pauseOnConnect: true, noDelay: true });
    const handOff = new ConnectionHandOff(server);
    server.on("connection", (socket) => handOff.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return handOff;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Follows a (new) front process: connections go to it once it reports "listening", until it drains or exits. */
  attach(child: ChildProcess): void {
    child.on("message", (message: { type?: string }, handle: unknown) => {
      if (message?.type === HAND_OFF_RETURNED && handle instanceof net.Socket) {
        // Node started reading it on receipt: nothing is read here, the successor reads it.
        stopReading(handle);
        this.#accept(handle, true);
      } else if (message?.type === "listening") {
        this.#front = child;
        this.#release();
      } else if (message?.type === HAND_OFF_DRAINING) {
        if (this.#front === child) this.#front = undefined;
        if (child.connected) child.send({ type: HAND_OFF_DRAINING_SEEN }, (err) => void err);
      }
    });
    child.once("exit", () => {
      if (this.#front === child) this.#front = undefined;
    });
  }

  /** Stops accepting and closes the connections still held. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const { socket, timer } of this.#held.splice(0)) {
      clearTimeout(timer);
      socket.destroy();
    }
    // Stops listening at once. Not waiting for the server's "close": connections handed to front processes are
    // theirs, yet Node's server counts them until each process that got one says it closed them, and never emits
    // "close" once every such process exited (its worker list is empty, nothing answers): a stop after a front
    // process restarted would hang.
    this.server.close();
    await new Promise((resolve) => setImmediate(resolve));
  }

  #accept(socket: net.Socket, idleKeepAlive = false): void {
    if (this.#closed) return void socket.destroy();
    if (this.#front?.connected) return this.#send(this.#front, socket, idleKeepAlive);
    if (this.#held.length >= MAX_HELD_CONNECTIONS) return void socket.destroy();
    const held: Held = {
      socket,
      idleKeepAlive,
      timer: setTimeout(() => {
        this.#held.splice(this.#held.indexOf(held), 1);
        socket.destroy();
      }, MAX_HOLD_MS),
    };
    socket.once("close", () => {
      const i = this.#held.indexOf(held);
      if (i >= 0) {
        clearTimeout(held.timer);
        this.#held.splice(i, 1);
      }
    });
    this.#held.push(held);
  }

  #release(): void {
    for (const { socket, timer, idleKeepAlive } of this.#held.splice(0)) {
      clearTimeout(timer);
      if (!socket.destroyed) this.#accept(socket, idleKeepAlive);
    }
  }

  #send(child: ChildProcess, socket: net.Socket, idleKeepAlive: boolean): void {
    const message: HandOffConnectionMessage = { type: HAND_OFF_CONNECTION, idleKeepAlive };
    // The child gets its own descriptor; the launcher's copy closes once sent.
    child.send(message, socket, (err) => {
      if (!err) return;
      // The child went away in between: hold it for the next front process.
      if (this.#front === child) this.#front = undefined;
      if (!socket.destroyed) this.#accept(socket, idleKeepAlive);
    });
  }
}
