export {
  catalogSchema,
  modelSchema,
  backendSchema,
  llamaCppBackendSchema,
  upstreamBackendSchema,
  simBackendSchema,
  tokenizerSource,
} from "./catalog.js";
export type { Catalog, CatalogModel, CatalogBackend, LlamaCppBackend } from "./catalog.js";
