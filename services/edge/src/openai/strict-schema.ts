import { Code, meshError } from "../../../../lib/errors.js";

function invalidParam(param: string, message: string, reason = "invalid_value") {
  return meshError(Code.InvalidArgument, message, { reason, param });
}

/** Keywords the llama.cpp grammar (node-llama-cpp's JSON-schema grammar) enforces. */
const ENFORCED = new Set([
  "type", "const", "enum", "oneOf", "anyOf", "properties", "additionalProperties", "required", "minProperties", "maxProperties",
  "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "format", "$defs", "$ref",
]);
/** Keywords that only annotate (nothing to enforce). */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"]);
/** String formats the grammar enforces. */
const FORMATS = new Set(["date-time", "time", "date"]);
/** Deepest schema nesting checked (work bounded before it starts). */
const MAX_SCHEMA_DEPTH = 64;

/**
 * Makes a JSON schema fit for grammar decoding, or refuses it: every
 * keyword is one the grammar enforces (or an annotation), else a 400 names
 * the keyword and where it is, rather than output that silently breaks it
 * (`minimum`, `pattern`, `multipleOf`, `allOf`, `not`, ...). `anyOf` becomes
 * `oneOf` (a value the grammar generates from one branch satisfies both);
 * `$ref` must point into `#/$defs/`. Returns the schema to decode under.
 */
export function strictSchema(schema: unknown, param: string, where: string): unknown {
  return walk(schema, param, where, "#", 0);
}

function walk(node: unknown, param: string, where: string, path: string, depth: number): unknown {
  if (typeof node === "boolean") return node ? {} : refuse(param, where, path, "false", "a schema that matches nothing");
  if (typeof node !== "object" || node === null || Array.isArray(node)) throw invalidParam(param, `${where} at ${path} is not a JSON schema object.`);
  if (depth > MAX_SCHEMA_DEPTH) throw invalidParam(param, `${where} nests deeper than ${MAX_SCHEMA_DEPTH} levels.`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (ANNOTATIONS.has(key)) {
      out[key] = value;
      continue;
    }
    if (!ENFORCED.has(key)) refuse(param, where, path, key, "a keyword the grammar does not enforce");
    const at = `${path}/${key}`;
    switch (key) {
      case "properties":
      case "$defs":
        out[key] = Object.fromEntries(Object.entries(objectOf(value, param, where, at)).map(([k, v]) => [k, walk(v, param, where, `${at}/${k}`, depth + 1)]));
        break;
      case "oneOf":
      case "anyOf":
      case "prefixItems":
        if (!Array.isArray(value)) throw invalidParam(param, `${where} at ${at} must be an array of schemas.`);
        out[key === "anyOf" ? "oneOf" : key] = value.map((v, i) => walk(v, param, where, `${at}/${i}`, depth + 1));
        break;
      case "items":
      case "additionalProperties":
        out[key] = typeof value === "boolean" ? value : walk(value, param, where, at, depth + 1);
        break;
      case "format":
        if (typeof value !== "string" || !FORMATS.has(value)) refuse(param, where, path, `format: ${JSON.stringify(value)}`, `a format the grammar does not enforce (it enforces ${[...FORMATS].join(", ")})`);
        out[key] = value;
        break;
      case "$ref":
        if (typeof value !== "string" || !value.startsWith("#/$defs/")) refuse(param, where, path, `$ref: ${JSON.stringify(value)}`, "a reference outside #/$defs/");
        out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  if ("oneOf" in out && "anyOf" in (node) && "oneOf" in (node)) refuse(param, where, path, "anyOf", "anyOf beside oneOf");
  return out;
}

function objectOf(value: unknown, param: string, where: string, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidParam(param, `${where} at ${at} must be an object.`);
  return value as Record<string, unknown>;
}

function refuse(param: string, where: string, path: string, keyword: string, what: string): never {
  throw invalidParam(
    param,
    `${where} uses '${keyword}' at ${path}, ${what}: this mesh refuses it rather than return output that may break it. Remove it, or check it in your code.`,
    "unsupported_schema_keyword",
  );
}
