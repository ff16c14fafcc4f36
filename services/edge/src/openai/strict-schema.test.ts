import { describe, expect, it } from "vitest";
import { Code, errorDetails } from "../../../../lib/errors.js";
import type { ConnectError } from "../../../../lib/errors.js";
import { toHttpError } from "./errors.js";
import { strictSchema } from "./strict-schema.js";

/** The refusal's status, param, reason and message, or "accepted". */
function refusal(schema: unknown): { status: number; param?: string; reason?: string; message: string } | "accepted" {
  try {
    strictSchema(schema, "response_format", "response_format.json_schema.schema");
    return "accepted";
  } catch (err) {
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    return { status: toHttpError(err, "r").status, ...errorDetails(err as ConnectError), message: (err as Error).message };
  }
}

const obj = (properties: Record<string, unknown>, more: Record<string, unknown> = {}) => ({ type: "object", properties, ...more });

/**
 * The keyword table of docs/api.md ("Strict structured output"): every
 * keyword the grammar cannot enforce, alone or in a combination it reads
 * differently, is a 400 naming it; none is silently ignored.
 */
describe("strict JSON schemas: refused keywords", () => {
  const refused: Array<[string, unknown, string]> = [
    // Keywords no grammar rule enforces.
    ["minimum", { type: "integer", minimum: 0 }, "minimum"],
    ["maximum", { type: "number", maximum: 9 }, "maximum"],
    ["exclusiveMinimum", { type: "number", exclusiveMinimum: 0 }, "exclusiveMinimum"],
    ["exclusiveMaximum", { type: "number", exclusiveMaximum: 1 }, "exclusiveMaximum"],
    ["multipleOf", { type: "integer", multipleOf: 2 }, "multipleOf"],
    ["pattern", { type: "string", pattern: "^a" }, "pattern"],
    ["patternProperties", { type: "object", patternProperties: { "^x": {} } }, "patternProperties"],
    ["propertyNames", { type: "object", propertyNames: { maxLength: 3 } }, "propertyNames"],
    ["dependentRequired", { type: "object", dependentRequired: { a: ["b"] } }, "dependentRequired"],
    ["dependentSchemas", { type: "object", dependentSchemas: { a: {} } }, "dependentSchemas"],
    ["unevaluatedProperties", { type: "object", unevaluatedProperties: false }, "unevaluatedProperties"],
    ["unevaluatedItems", { type: "array", unevaluatedItems: false }, "unevaluatedItems"],
    ["contains", { type: "array", contains: { const: 1 } }, "contains"],
    ["minContains", { type: "array", minContains: 1 }, "minContains"],
    ["uniqueItems: true", { type: "array", items: { type: "integer" }, uniqueItems: true }, "uniqueItems"],
    ["allOf", { allOf: [{ type: "string" }] }, "allOf"],
    ["not", { not: { type: "null" } }, "not"],
    ["if/then/else", { if: { type: "string" }, then: { minLength: 1 } }, "if"],
    ["contentEncoding", { type: "string", contentEncoding: "base64" }, "contentEncoding"],
    ["$anchor", { $anchor: "x", type: "string" }, "$anchor"],
    ["$dynamicRef", { $dynamicRef: "#x" }, "$dynamicRef"],
    ["definitions (draft-07)", { definitions: { a: { type: "string" } }, $ref: "#/definitions/a" }, "definitions"],
    ["a format the grammar lacks", { type: "string", format: "email" }, 'format: "email"'],
    ["the false schema", { type: "object", properties: { a: false } }, "false"],
    // References the grammar would read as "any JSON".
    ["$ref outside #/$defs/", { $ref: "#/properties/a" }, '$ref: "#/properties/a"'],
    ["$ref to a missing definition", { $defs: { a: { type: "string" } }, $ref: "#/$defs/b" }, '$ref: "#/$defs/b"'],
    ["$ref with a JSON-pointer path", { $defs: { a: { type: "string" } }, $ref: "#/$defs/a/b" }, '$ref: "#/$defs/a/b"'],
    ["$defs below the root", obj({ a: { $defs: { x: { type: "string" } }, $ref: "#/$defs/x" } }), "$defs"],
    // Combinations the grammar reads one keyword of.
    ["a keyword beside $ref", { $defs: { a: { type: "string" } }, $ref: "#/$defs/a", maxLength: 3 }, "maxLength"],
    ["type beside anyOf", { type: "object", anyOf: [{ type: "object" }] }, "type"],
    ["properties beside oneOf", { oneOf: [{ type: "null" }, { type: "object" }], properties: {} }, "properties"],
    ["anyOf beside oneOf", { oneOf: [{ type: "null" }], anyOf: [{ type: "string" }] }, "anyOf"],
    ["minLength beside enum", { type: "string", enum: ["a", "bb"], minLength: 2 }, "minLength"],
    ["an enum value of another type", { type: "string", enum: ["a", 1] }, "enum: 1"],
    ["a const of another type", { type: "integer", const: 1.5 }, "const: 1.5"],
    ["maxLength beside format", { type: "string", format: "date", maxLength: 4 }, "maxLength"],
    // Objects and arrays the grammar would write otherwise than the schema says.
    ["a required property not in properties", obj({ a: { type: "string" } }, { required: ["a", "b"] }), 'required: "b"'],
    ["maxProperties below the properties listed", obj({ a: { type: "null" }, b: { type: "null" } }, { maxProperties: 1 }), "maxProperties: 1"],
    ["minProperties above what is allowed", obj({ a: { type: "null" } }, { minProperties: 2, additionalProperties: false }), "minProperties: 2"],
    ["maxItems below prefixItems", { type: "array", prefixItems: [{ type: "null" }, { type: "null" }], maxItems: 1 }, "maxItems: 1"],
    ["minItems above maxItems", { type: "array", minItems: 3, maxItems: 2 }, "minItems: 3"],
    ["minItems past prefixItems with items: false", { type: "array", prefixItems: [{ type: "null" }], items: false, minItems: 2 }, "items: false"],
    ["minLength above maxLength", { type: "string", minLength: 5, maxLength: 2 }, "minLength: 5"],
    ["oneOf branches that may both match", { oneOf: [{ type: "number" }, { type: "integer" }] }, "oneOf"],
    ["oneOf branches sharing an enum value", { oneOf: [{ enum: ["a", "b"] }, { const: "b" }] }, "oneOf"],
    ["oneOf with an unconstrained branch", { oneOf: [{ type: "string" }, {}] }, "oneOf"],
    ["nested deep inside", obj({ list: { type: "array", items: obj({ n: { type: "integer", minimum: 1 } }) } }), "minimum"],
  ];

  it.each(refused)("%s → 400 unsupported_schema_keyword naming it", (_name, schema, keyword) => {
    const result = refusal(schema);
    expect(result).not.toBe("accepted");
    const r = result as Exclude<typeof result, "accepted">;
    expect(r).toMatchObject({ status: 400, param: "response_format", reason: "unsupported_schema_keyword" });
    expect(r.message).toContain(`'${keyword}'`);
  });

  it.each([
    ["a count that is not a non-negative integer", { type: "string", maxLength: 1.5 }],
    ["a type that is not a JSON type", { type: "float" }],
    ["an empty enum", { enum: [] }],
    ["items as a list (draft-04 tuples)", { type: "array", items: [{ type: "null" }] }],
  ])("%s → 400 invalid_value", (_name, schema) => {
    expect(refusal(schema)).toMatchObject({ status: 400, param: "response_format", reason: "invalid_value" });
  });
});

describe("strict JSON schemas: accepted, as the grammar must read them", () => {
  it.each([
    [
      "enum, const, nested objects",
      obj({ a: { enum: ["x", "y"] }, b: obj({ c: { const: 1 } }, { required: ["c"], additionalProperties: false }) }, { required: ["a"] }),
    ],
    [
      "strings with lengths, formats, annotations",
      obj({ s: { type: "string", minLength: 1, maxLength: 12, description: "d" }, d: { type: "string", format: "date-time", title: "t" } }),
    ],
    [
      "arrays with counts, prefixItems and item schemas",
      { type: "array", prefixItems: [{ type: "boolean" }], items: { type: "integer" }, minItems: 1, maxItems: 4 },
    ],
    ["$defs and $ref (recursive)", { $defs: { node: obj({ next: { anyOf: [{ type: "null" }, { $ref: "#/$defs/node" }] } }) }, $ref: "#/$defs/node" }],
    ["oneOf with disjoint branches", { oneOf: [{ type: "integer" }, { enum: ["none"] }, { type: "null" }] }],
    ["a scalar type list", { type: ["string", "null"] }],
    ["additionalProperties as a schema, min/maxProperties", { type: "object", additionalProperties: { type: "integer" }, minProperties: 1, maxProperties: 3 }],
    ["uniqueItems: false (a no-op)", { type: "array", uniqueItems: false }],
  ])("%s", (_name, schema) => {
    expect(refusal(schema)).toBe("accepted");
  });

  it("decodes anyOf as oneOf, one branch per type for several types with type keywords, items: false as maxItems", () => {
    expect(strictSchema({ anyOf: [{ type: "number" }, { type: "integer" }] }, "p", "w")).toEqual({ oneOf: [{ type: "number" }, { type: "integer" }] });
    expect(strictSchema({ type: ["string", "null"], maxLength: 3, description: "d" }, "p", "w")).toEqual({
      description: "d",
      oneOf: [{ type: "string", maxLength: 3 }, { type: "null" }],
    });
    expect(strictSchema({ type: ["object", "null"], properties: { a: { type: "null" } } }, "p", "w")).toEqual({
      oneOf: [{ type: "object", properties: { a: { type: "null" } } }, { type: "null" }],
    });
    expect(strictSchema({ type: ["array"], prefixItems: [{ type: "null" }], items: false }, "p", "w")).toEqual({
      type: "array",
      prefixItems: [{ type: "null" }],
      maxItems: 1,
    });
    expect(strictSchema({ type: "string", enum: ["a"] }, "p", "w")).toEqual({ enum: ["a"] });
  });
});
