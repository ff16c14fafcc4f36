export * from "./parsers.js";
export * from "./forced-schema.js";
export * from "./tool-call-stream.js";
export * from "./tool-prompt.js";
