export { createLogger } from "./logger.js";
export type { Logger } from "./logger.js";
export { parseConfig, ConfigError, portSchema, positiveIntSchema, jsonSchema } from "./config.js";
export { runService, DRAIN_TIMEOUT_MS } from "./service-main.js";
export type { RunningService, ListeningMessage } from "./service-main.js";
export { freePort } from "./free-port.js";
export { preparePrivateDir, ensurePrivateFile, tightenFiles, DATA_DIR_MODE, PRIVATE_FILE_MODE } from "./data-dir.js";
export { logFormatFrom, prettyLogLine } from "./log-format.js";
export type { LogFormat } from "./log-format.js";
