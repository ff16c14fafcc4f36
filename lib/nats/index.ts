export { connectNats, natsServers, RECONNECT_WAIT_MS, CONNECT_TIMEOUT_MS } from "./connection.js";
export type { NatsConnectOptions } from "./connection.js";
export { meshNatsNames, subjectToken, fromSubjectToken } from "./names.js";
export type { MeshNatsNames } from "./names.js";
export { JetStreamOutbox, PUBLISH_TIMEOUT_MS, REPLAY_INTERVAL_MS, MAX_BUFFERED } from "./outbox.js";
export type { OutboxMessage, OutboxOptions, OutboxResult } from "./outbox.js";
export { scanStream } from "./stream-scan.js";
export type { StreamScanOptions } from "./stream-scan.js";
export { retryTransient, isTransientNatsError, TRANSIENT_RETRY_BUDGET_MS } from "./retry.js";
