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
