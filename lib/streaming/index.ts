export { coalesce, MAX_CHUNKS_PER_MESSAGE } from "./coalesce.js";
export { mergeRuns } from "./merge-runs.js";
