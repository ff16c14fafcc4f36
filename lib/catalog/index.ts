export {
  catalogSchema,
  modelSchema,
  backendSchema,
  llamaCppBackendSchema,
  upstreamBackendSchema,
  simBackendSchema,
  tokenizerSource,
  systemFingerprintOf,
  SIM_SYSTEM_FINGERPRINT,
  experimentSchema,
  experimentProblems,
} from "./catalog.js";
export type { Catalog, CatalogModel, CatalogBackend, LlamaCppBackend, SimBackend, UpstreamBackend, CatalogExperiment } from "./catalog.js";
export {
  addedModelEntry,
  parseAddedModelEntry,
  checkAddedModelFiles,
  AddedModelError,
  MAX_ADDED_MODELS,
  MAX_ADDED_MODEL_JSON_BYTES,
  MAX_ADDED_MODEL_REPLICAS,
} from "./added-model.js";
export type { AddModelSpec } from "./added-model.js";
export { watchAddedModels, MODEL_WATCH_SILENCE_MS } from "./watch-added-models.js";
export type { AddedModelsListener } from "./watch-added-models.js";
