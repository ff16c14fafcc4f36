import type { Socket } from "node:net";

/**
 * How `llm-mesh up` hands client connections to its front process (edge or core) over IPC
 * instead of letting it listen itself (cli/up/connection-hand-off.ts): the launcher owns the
 * public socket, so connections wait while the front process restarts instead of being refused.
 */

/** Environment variable: "ipc" when the launcher hands connections over, else the front process listens on PORT itself. */
export const HAND_OFF_ENV = "MESH_HTTP_HAND_OFF";
/** IPC message type (launcher → front) carrying one accepted socket. */
export const HAND_OFF_CONNECTION = "mesh:connection";
/** IPC message type (front → launcher): it is draining (SIGTERM); hold new connections for its successor. */
export const HAND_OFF_DRAINING = "mesh:draining";
/**
 * IPC message type (launcher → front): the launcher read "draining" and sends no more sockets.
 * IPC keeps order, so every socket sent before it has arrived; the front serves those.
 */
export const HAND_OFF_DRAINING_SEEN = "mesh:draining-seen";
/**
 * IPC message type (draining front → launcher) carrying an idle HTTP/1.1 keep-alive connection:
 * its last answer is written and nothing was read since, so the front stops reading and hands it
 * back instead of closing it (a client may be sending its next request on it in that instant,
 * and a POST that meets a closed socket fails). The launcher passes it to the successor as a
 * HAND_OFF_CONNECTION with `idleKeepAlive: true`; whatever the client sent meanwhile waits in
 * the kernel's buffer for the successor to read.
 */
export const HAND_OFF_RETURNED = "mesh:connection-returned";

/** The HAND_OFF_CONNECTION message. */
export interface HandOffConnectionMessage {
  type: typeof HAND_OFF_CONNECTION;
  /** A keep-alive connection a draining front handed back: it may stay silent up to the keep-alive timeout. */
  idleKeepAlive?: boolean;
}

/**
 * Stops a socket that Node created from a descriptor received over IPC (or one about to be sent)
 * from reading, as `pauseOnCreate` would: bytes its client sends stay in the kernel's buffer for
 * whichever process reads it next. Node starts reading such a socket at once.
 */
export function stopReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop(): number } })._handle;
  if (!handle) return;
  handle.reading = false;
  handle.readStop();
}
