/**
 * How `llm-mesh up` hands client connections to its front process (edge or core) over IPC
 * instead of letting it listen itself (cli/up/connection-hand-off.ts): the launcher owns the
 * public socket, so connections wait while the front process restarts instead of being refused.
 */

/** Environment variable: "ipc" when the launcher hands connections over, else the front process listens on PORT itself. */
export const HAND_OFF_ENV = "MESH_HTTP_HAND_OFF";
/** IPC message type (launcher → front, and back while draining) carrying one accepted socket. */
export const HAND_OFF_CONNECTION = "mesh:connection";
/** IPC message type (front → launcher): it stopped taking connections (SIGTERM); hold new ones for its successor. */
export const HAND_OFF_DRAINING = "mesh:draining";
