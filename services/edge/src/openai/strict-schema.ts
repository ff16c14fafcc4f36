import { Code, meshError } from "../../../../lib/errors.js";

function invalidParam(param: string, message: string, reason = "invalid_value") {
  return meshError(Code.InvalidArgument, message, { reason, param });
}

/**
 * Keywords the llama.cpp grammar (node-llama-cpp 3.22's JSON-schema grammar,
 * utils/gbnfJson) enforces, under the conditions `walk` checks. Its
 * generator looks at one kind per schema, in this order: `$ref`, `oneOf`,
 * `const`, `enum`, then `type` (object, array, string with or without
 * `format`, the rest); whatever else sits beside the kind it picked is
 * ignored, so such combinations are refused here.
 */
const ENFORCED = new Set([
  "type",
  "const",
  "enum",
  "oneOf",
  "anyOf",
  "properties",
  "additionalProperties",
  "required",
  "minProperties",
  "maxProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "format",
  "$defs",
  "$ref",
  "uniqueItems",
]);
/** Keywords that only annotate (nothing to enforce). */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"]);
/** String formats the grammar enforces. */
const FORMATS = new Set(["date-time", "time", "date"]);
const JSON_TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
/** Keywords that constrain one type only, by type: a schema with several types gets one branch per type. */
const TYPE_KEYWORDS: Record<string, readonly string[]> = {
  object: ["properties", "additionalProperties", "required", "minProperties", "maxProperties"],
  array: ["items", "prefixItems", "minItems", "maxItems", "uniqueItems"],
  string: ["minLength", "maxLength", "format"],
};
const COUNTS = ["minProperties", "maxProperties", "minItems", "maxItems", "minLength", "maxLength"];
/** Deepest schema nesting checked (work bounded before it starts). */
const MAX_SCHEMA_DEPTH = 64;
/** Deepest `$ref` chain followed when telling `oneOf` branches apart. */
const MAX_REF_DEPTH = 8;

/** One schema being checked: where errors point, and the root's `$defs` that `$ref`s resolve against. */
interface Walk {
  param: string;
  where: string;
  defs: Record<string, unknown>;
}

/**
 * Makes a JSON schema fit for grammar decoding, or refuses it: every
 * keyword is one the grammar enforces (or an annotation), in a combination
 * it enforces, else a 400 names the keyword and where it is, rather than
 * output that silently breaks it (`minimum`, `pattern`, `multipleOf`,
 * `allOf`, `not`, a `maxLength` beside `format`, a `required` property
 * that is not in `properties`, ...). Rewrites what the grammar reads
 * differently: `anyOf` becomes `oneOf` (a value generated from one branch
 * satisfies both), several `type`s with type keywords one branch per type,
 * `items: false` a `maxItems`. `$ref` must point into the root's
 * `#/$defs/`. Returns the schema to decode under.
 */
export function strictSchema(schema: unknown, param: string, where: string): unknown {
  const root = typeof schema === "object" && schema !== null && !Array.isArray(schema) ? (schema as Record<string, unknown>) : {};
  const defs = root.$defs === undefined ? {} : objectOf(root.$defs, { param, where }, "#/$defs");
  return walk(schema, { param, where, defs }, "#", 0);
}

function walk(node: unknown, w: Walk, path: string, depth: number): unknown {
  if (typeof node === "boolean") return node ? {} : refuse(w, path, "false", "a schema that matches nothing");
  if (typeof node !== "object" || node === null || Array.isArray(node)) throw invalidParam(w.param, `${w.where} at ${path} is not a JSON schema object.`);
  if (depth > MAX_SCHEMA_DEPTH) throw invalidParam(w.param, `${w.where} nests deeper than ${MAX_SCHEMA_DEPTH} levels.`);
  const schema = node as Record<string, unknown>;
  for (const key of Object.keys(schema)) {
    if (!ANNOTATIONS.has(key) && !ENFORCED.has(key)) refuse(w, path, key, "a keyword the grammar does not enforce");
  }
  if ("$defs" in schema && path !== "#") refuse(w, path, "$defs", "$defs below the root ($ref resolves against the root's)");
  const types = typesOf(schema, w, path);
  const constraining = Object.keys(schema).filter((k) => !ANNOTATIONS.has(k) && k !== "$defs");
  const besides = (kind: string, allowed: readonly string[] = []) => {
    const other = constraining.find((k) => k !== kind && !allowed.includes(k));
    if (other) refuse(w, path, other, `'${other}' beside '${kind}' (the grammar follows '${kind}' alone); put it inside each branch or definition`);
  };
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(schema).filter(([k]) => ANNOTATIONS.has(k)));
  if (path === "#" && schema.$defs !== undefined) {
    out.$defs = Object.fromEntries(Object.entries(w.defs).map(([k, v]) => [k, walk(v, w, `#/$defs/${k}`, depth + 1)]));
  }

  if (schema.$ref !== undefined) {
    besides("$ref");
    const ref = schema.$ref;
    const name = typeof ref === "string" && ref.startsWith("#/$defs/") ? ref.slice("#/$defs/".length) : undefined;
    if (name === undefined || name.includes("/") || name.includes("~")) {
      refuse(w, path, `$ref: ${JSON.stringify(ref)}`, "a reference that is not #/$defs/<name>");
    }
    if (!Object.hasOwn(w.defs, name)) refuse(w, path, `$ref: ${JSON.stringify(ref)}`, "a reference to a definition that the root's $defs does not have");
    return { ...out, $ref: ref };
  }
  if (schema.oneOf !== undefined || schema.anyOf !== undefined) {
    if (schema.oneOf !== undefined && schema.anyOf !== undefined) refuse(w, path, "anyOf", "anyOf beside oneOf");
    const kind = schema.oneOf !== undefined ? "oneOf" : "anyOf";
    besides(kind);
    const branches = schema[kind];
    if (!Array.isArray(branches) || branches.length === 0) throw invalidParam(w.param, `${w.where} at ${path}/${kind} must be a non-empty array of schemas.`);
    if (kind === "oneOf") exclusiveBranches(branches, w, `${path}/oneOf`);
    return { ...out, oneOf: branches.map((b, i) => walk(b, w, `${path}/${kind}/${i}`, depth + 1)) };
  }
  if (schema.const !== undefined || schema.enum !== undefined) {
    const kind = schema.const !== undefined ? "const" : "enum";
    besides(kind, ["type"]);
    const values: unknown = kind === "const" ? [schema.const] : schema.enum;
    if (!Array.isArray(values) || values.length === 0) throw invalidParam(w.param, `${w.where} at ${path}/enum must be a non-empty array.`);
    const stray: unknown = types && (values as unknown[]).find((v) => !types.some((t) => valueHasType(v, t)));
    if (stray !== undefined && types) refuse(w, path, `${kind}: ${JSON.stringify(stray)}`, `a value that is not of its type ${JSON.stringify(schema.type)}`);
    return { ...out, [kind]: schema[kind] };
  }
  for (const key of COUNTS) {
    const value = schema[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      throw invalidParam(w.param, `${w.where} at ${path}/${key} must be a non-negative integer.`);
    }
  }
  if (!types) return out; // no type: the grammar generates null, which such a schema allows
  // Several types: the grammar reads a list only for scalar types and without their keywords. One branch per type,
  // each with its own type's keywords, is what the grammar reads and what the schema means.
  if (types.length > 1 && types.some((t) => t === "object" || t === "array" || (TYPE_KEYWORDS[t] ?? []).some((k) => k in schema))) {
    return { ...out, oneOf: types.map((t, i) => walk(branchFor(schema, t), w, `${path}/type/${i}`, depth + 1)) };
  }
  const type = types.length === 1 ? types[0] : undefined;
  out.type = type ?? types; // ["string"] as "string": the grammar's string, object and array rules need the plain name
  if (type === "object") Object.assign(out, objectKeywords(schema, w, path, depth));
  else if (type === "array") Object.assign(out, arrayKeywords(schema, w, path, depth));
  else if (type === "string") Object.assign(out, stringKeywords(schema, w, path));
  return out;
}

/** `type` as a list of JSON types, or undefined when absent. */
function typesOf(schema: Record<string, unknown>, w: Walk, path: string): string[] | undefined {
  if (schema.type === undefined) return undefined;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length === 0 || !types.every((t) => typeof t === "string" && JSON_TYPES.has(t)) || new Set(types).size !== types.length) {
    throw invalidParam(w.param, `${w.where} at ${path}/type must be a JSON type or a list of distinct ones.`);
  }
  return types as string[];
}

/** The part of a several-types schema that applies to `type`. */
function branchFor(schema: Record<string, unknown>, type: string): Record<string, unknown> {
  const own = TYPE_KEYWORDS[type] ?? [];
  const foreign = new Set(Object.values(TYPE_KEYWORDS).flat());
  return { ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "type" && !ANNOTATIONS.has(k) && (own.includes(k) || !foreign.has(k)))), type };
}

function objectKeywords(schema: Record<string, unknown>, w: Walk, path: string, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const properties = schema.properties === undefined ? {} : objectOf(schema.properties, w, `${path}/properties`);
  const names = Object.keys(properties);
  if (schema.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, walk(v, w, `${path}/properties/${k}`, depth + 1)]));
  }
  const extra = schema.additionalProperties;
  if (extra !== undefined) out.additionalProperties = typeof extra === "boolean" ? extra : walk(extra, w, `${path}/additionalProperties`, depth + 1);
  const extraAllowed = extra !== undefined && extra !== false;
  if (schema.required !== undefined) {
    if (!Array.isArray(schema.required) || !schema.required.every((r) => typeof r === "string")) {
      throw invalidParam(w.param, `${w.where} at ${path}/required must be an array of names.`);
    }
    // The grammar writes every listed property (so any `required` subset holds) and nothing else it is not told to.
    const missing = schema.required.find((r) => !names.includes(r));
    if (missing !== undefined) {
      refuse(w, path, `required: ${JSON.stringify(missing)}`, "a required property that 'properties' does not define (the grammar would never write it)");
    }
    out.required = schema.required;
  }
  const min = schema.minProperties as number | undefined;
  const max = schema.maxProperties as number | undefined;
  if (max !== undefined && max < names.length) {
    refuse(w, path, `maxProperties: ${max}`, `fewer than the ${names.length} properties listed, which the grammar always writes`);
  }
  if (min !== undefined && min > names.length && !extraAllowed) refuse(w, path, `minProperties: ${min}`, "more than the properties the schema allows");
  if (min !== undefined && max !== undefined && min > max) refuse(w, path, `minProperties: ${min}`, "above maxProperties");
  if (min !== undefined) out.minProperties = min;
  if (max !== undefined) out.maxProperties = max;
  return out;
}

function arrayKeywords(schema: Record<string, unknown>, w: Walk, path: string, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let prefix = 0;
  if (schema.prefixItems !== undefined) {
    if (!Array.isArray(schema.prefixItems)) throw invalidParam(w.param, `${w.where} at ${path}/prefixItems must be an array of schemas.`);
    out.prefixItems = schema.prefixItems.map((v, i) => walk(v, w, `${path}/prefixItems/${i}`, depth + 1));
    prefix = schema.prefixItems.length;
  }
  let max = schema.maxItems as number | undefined;
  const min = schema.minItems as number | undefined;
  if (schema.items === false)
    max = Math.min(max ?? prefix, prefix); // nothing after the prefix
  else if (schema.items !== undefined && schema.items !== true) out.items = walk(schema.items, w, `${path}/items`, depth + 1);
  if (max !== undefined && max < prefix) refuse(w, path, `maxItems: ${max}`, `fewer than the ${prefix} prefixItems, which the grammar always writes`);
  if (min !== undefined && max !== undefined && min > max) {
    refuse(w, path, schema.items === false ? "items: false" : `minItems: ${min}`, "more items required than allowed");
  }
  if (schema.uniqueItems === true) refuse(w, path, "uniqueItems", "a keyword the grammar does not enforce");
  if (min !== undefined) out.minItems = min;
  if (max !== undefined) out.maxItems = max;
  return out;
}

function stringKeywords(schema: Record<string, unknown>, w: Walk, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { format, minLength, maxLength } = schema;
  if (format !== undefined) {
    if (typeof format !== "string" || !FORMATS.has(format)) {
      refuse(w, path, `format: ${JSON.stringify(format)}`, `a format the grammar does not enforce (it enforces ${[...FORMATS].join(", ")})`);
    }
    const length = minLength !== undefined ? "minLength" : maxLength !== undefined ? "maxLength" : undefined;
    if (length) refuse(w, path, length, "a length beside 'format' (the grammar follows the format alone)");
    out.format = format;
  }
  if (minLength !== undefined && maxLength !== undefined && (minLength as number) > (maxLength as number)) {
    refuse(w, path, `minLength: ${minLength as number}`, "above maxLength");
  }
  if (minLength !== undefined) out.minLength = minLength;
  if (maxLength !== undefined) out.maxLength = maxLength;
  return out;
}

/** What a branch can be, to tell `oneOf` branches apart: its JSON types (integer counts as number) and, for const/enum, its values. */
interface Kinds {
  types: Set<string> | "any";
  values?: Set<string>;
}

function kindsOf(node: unknown, defs: Record<string, unknown>, depth = 0): Kinds {
  if (typeof node !== "object" || node === null || depth > MAX_REF_DEPTH) return { types: "any" };
  const s = node as Record<string, unknown>;
  if (typeof s.$ref === "string") return kindsOf(defs[s.$ref.slice("#/$defs/".length)], defs, depth + 1);
  const branches = Array.isArray(s.oneOf) ? s.oneOf : Array.isArray(s.anyOf) ? s.anyOf : undefined;
  if (branches) {
    const all = branches.map((b) => kindsOf(b, defs, depth + 1));
    if (all.some((k) => k.types === "any")) return { types: "any" };
    return { types: new Set(all.flatMap((k) => [...(k.types as Set<string>)])) };
  }
  const values = s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? s.enum : undefined;
  if (values) return { types: new Set(values.map(jsonTypeOf)), values: new Set(values.map((v) => JSON.stringify(v))) };
  if (s.type === undefined) return { types: "any" };
  return { types: new Set((Array.isArray(s.type) ? s.type : [s.type]).map((t) => (t === "integer" ? "number" : String(t)))) };
}

/**
 * `oneOf` means exactly one branch matches: the grammar picks one branch,
 * so the output is valid only if no other branch can match it too.
 * Accepted when the branches' types are disjoint, or where they share a
 * type, both are const/enum with no value in common; else refused (anyOf
 * says what such a schema most likely means).
 */
function exclusiveBranches(branches: unknown[], w: Walk, path: string): void {
  const kinds = branches.map((b) => kindsOf(b, w.defs));
  for (let i = 0; i < kinds.length; i++) {
    for (let j = i + 1; j < kinds.length; j++) {
      const [a, b] = [kinds[i], kinds[j]];
      const shared = a.types === "any" || b.types === "any" ? true : [...a.types].some((t) => (b.types as Set<string>).has(t));
      if (!shared) continue;
      if (a.values && b.values && ![...a.values].some((v) => b.values!.has(v))) continue;
      refuse(w, path, "oneOf", `branches ${i} and ${j} that one value may both match (oneOf needs exactly one); use anyOf if either may`);
    }
  }
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value === "number" ? "number" : typeof value;
}

function valueHasType(value: unknown, type: string): boolean {
  if (type === "integer") return Number.isInteger(value);
  return jsonTypeOf(value) === type;
}

function objectOf(value: unknown, w: Pick<Walk, "param" | "where">, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidParam(w.param, `${w.where} at ${at} must be an object.`);
  return value as Record<string, unknown>;
}

function refuse(w: Pick<Walk, "param" | "where">, path: string, keyword: string, what: string): never {
  throw invalidParam(
    w.param,
    `${w.where} uses '${keyword}' at ${path}, ${what}: this mesh refuses it rather than return output that may break it. Remove it, or check it in your code.`,
    "unsupported_schema_keyword",
  );
}
