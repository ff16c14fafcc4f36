import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { catalogSchema } from "../../lib/catalog/index.js";
import type { Catalog } from "../../lib/catalog/index.js";
import { ConfigError } from "../../lib/runtime/index.js";

/**
 * Reads and validates a catalog file (mesh.yaml). Errors name the file, the
 * path inside it and the problem. Relative model paths are resolved against
 * the file's folder.
 */
export async function readCatalogFile(file: string): Promise<Catalog> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const result = catalogSchema.safeParse(doc);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${file}: ${formatPath(issue.path)}: ${issue.message}`);
    throw new ConfigError(`invalid catalog\n${lines.join("\n")}`);
  }
  const base = path.dirname(path.resolve(file));
  for (const model of result.data.models) {
    if (model.tokenizer) model.tokenizer = path.resolve(base, model.tokenizer);
    for (const backend of model.backends) if (backend.engine === "llama.cpp") backend.model = path.resolve(base, backend.model);
  }
  return result.data;
}

function formatPath(parts: readonly PropertyKey[]): string {
  return parts.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("") || "(root)";
}

/** `--model FILE.gguf` or `--model NAME=FILE.gguf` → a one-backend catalog entry. */
export function catalogFromModelFlags(flags: readonly string[]): Catalog {
  return catalogSchema.parse({
    models: flags.map((flag) => {
      const eq = flag.indexOf("=");
      const file = path.resolve(eq > 0 ? flag.slice(eq + 1) : flag);
      const name = eq > 0 ? flag.slice(0, eq) : path.basename(file).replace(/\.gguf$/i, "");
      return { name, backends: [{ name: "local", engine: "llama.cpp", model: file }] };
    }),
  });
}
