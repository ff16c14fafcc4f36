import type { Llama, LlamaGrammar } from "node-llama-cpp";
import { Code } from "@connectrpc/connect";
import { meshError } from "../../../../lib/errors.js";

/** Schemas whose grammar is kept (per engine), most recently used last. */
const MAX_CACHED_GRAMMARS = 32;

/** Largest `response_format` schema accepted, in bytes of JSON (compilation grows with it). */
export const MAX_SCHEMA_BYTES = 16_384;
/** Most enum values (all `enum`s of a schema together) accepted. */
export const MAX_SCHEMA_ENUM_VALUES = 512;
/** Most object properties (all `properties` of a schema together) accepted. */
export const MAX_SCHEMA_PROPERTIES = 128;
/** Deepest nesting of objects and arrays accepted in a schema. */
export const MAX_SCHEMA_DEPTH = 16;

/** Root keywords that make a schema constrain something (node-llama-cpp reads anything else as `null`). */
const ROOT_KEYWORDS = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties", "items"];

/**
 * llama.cpp grammars for `SamplingParams.json_schema`: "{}" is any JSON
 * object (node-llama-cpp's "json" grammar), anything else a JSON schema in
 * the subset node-llama-cpp turns into GBNF. A schema that cannot become a
 * grammar is InvalidArgument naming `response_format`.
 */
export class JsonGrammars {
  readonly #cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  get(jsonSchema: string): Promise<LlamaGrammar> {
    const cached = this.#cache.get(jsonSchema);
    if (cached) {
      this.#cache.delete(jsonSchema);
      this.#cache.set(jsonSchema, cached);
      return cached;
    }
    const grammar = this.#create(jsonSchema);
    this.#cache.set(jsonSchema, grammar);
    grammar.catch(() => this.#cache.delete(jsonSchema));
    while (this.#cache.size > MAX_CACHED_GRAMMARS) this.#cache.delete(this.#cache.keys().next().value!);
    return grammar;
  }

  async #create(jsonSchema: string): Promise<LlamaGrammar> {
    const schema = parseSchema(jsonSchema);
    if (Object.keys(schema).length === 0) return this.llama.getGrammarFor("json");
    try {
      const grammar = await this.llama.createGrammarForJsonSchema(schema as never); // node-llama-cpp checks the subset it supports
      const exact = exactNumbers(grammar.grammar);
      if (exact === grammar.grammar) return grammar;
      return await this.llama.createGrammar({
        grammar: exact,
        stopGenerationTriggers: grammar.stopGenerationTriggers,
        trimWhitespaceSuffix: grammar.trimWhitespaceSuffix,
      });
    } catch (err) {
      throw invalid(`response_format.json_schema.schema cannot be used: ${(err as Error).message}`, err);
    }
  }
}

/** Integer digits allowed: 15 keeps every value a safe integer. */
const INTEGER_RULE = 'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,14})';
/** Fraction exponents of at most 2 digits: no value overflows to Infinity. */
const EXPONENT = '([eE] [-+]? ("0" | [1-9] [0-9]{0,1}))?';

/**
 * node-llama-cpp's number rules allow an exponent on integers and exponents
 * of 16 digits (`9e1802221` is an "integer" that parses as Infinity): the
 * integer rule becomes plain digits, the fractional exponent two digits.
 */
export function exactNumbers(gbnf: string): string {
  return gbnf
    .replace(/^integer-number-rule ::= .*$/m, INTEGER_RULE)
    .replace(/^(fractional-number-rule ::= .*)\(\[eE\] \[-\+\]\? \("0" \| \[1-9\] \[0-9\]\{0,15\}\)\)\?$/m, (_m, head: string) => head + EXPONENT);
}

/**
 * Parses and checks a schema's shape and size before node-llama-cpp sees it:
 * bytes, enum values, properties and depth are capped (the work of building
 * and applying a grammar grows with them), each refusal naming its limit.
 */
export function parseSchema(jsonSchema: string): Record<string, unknown> {
  if (Buffer.byteLength(jsonSchema, "utf8") > MAX_SCHEMA_BYTES) {
    throw tooLarge(`response_format.json_schema.schema is larger than ${MAX_SCHEMA_BYTES} bytes`);
  }
  let schema: unknown;
  try {
    schema = JSON.parse(jsonSchema);
  } catch (err) {
    throw invalid("response_format.json_schema.schema is not valid JSON", err);
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw invalid("response_format.json_schema.schema must be a JSON object");
  const record = schema as Record<string, unknown>;
  if (Object.keys(record).length > 0 && !ROOT_KEYWORDS.some((k) => k in record)) {
    throw invalid(`response_format.json_schema.schema constrains nothing: give one of ${ROOT_KEYWORDS.join(", ")} at its root`);
  }
  checkSize(record);
  return record;
}

/** Counts enum values and properties over the whole schema, and its depth; throws past a limit. */
function checkSize(root: unknown): void {
  let enumValues = 0;
  let properties = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth > MAX_SCHEMA_DEPTH) throw tooLarge(`response_format.json_schema.schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (Array.isArray(node)) {
      for (const item of node) stack.push([item, depth + 1]);
      continue;
    }
    const record = node as Record<string, unknown>;
    if (Array.isArray(record.enum)) enumValues += record.enum.length;
    if (record.properties && typeof record.properties === "object") properties += Object.keys(record.properties).length;
    if (enumValues > MAX_SCHEMA_ENUM_VALUES) throw tooLarge(`response_format.json_schema.schema has more than ${MAX_SCHEMA_ENUM_VALUES} enum values`);
    if (properties > MAX_SCHEMA_PROPERTIES) throw tooLarge(`response_format.json_schema.schema has more than ${MAX_SCHEMA_PROPERTIES} properties`);
    for (const value of Object.values(record)) stack.push([value, depth + 1]);
  }
}

function tooLarge(message: string) {
  return meshError(Code.InvalidArgument, message, { reason: "schema_too_large", param: "response_format" });
}

function invalid(message: string, cause?: unknown) {
  return meshError(Code.InvalidArgument, message, { reason: "invalid_value", param: "response_format", cause });
}
