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
 * IPC keeps order, so every socket sent before it has arrived; the front serves those (a socket
 * is never handed back: bytes its client sent may already be read, and would be lost).
 */
export const HAND_OFF_DRAINING_SEEN = "mesh:draining-seen";
