import { describe, expect, it } from "vitest";
import { ConnectError, errorDetails } from "../../../../lib/errors.js";
import { chatGenerationInput, parseChatRequest } from "./chat-request.js";
import { toRouterRequest } from "./generation.js";

const base = { model: "m", messages: [{ role: "user", content: "hi" }] };
const ctx = { requestId: "r", principal: { keyId: "k", admin: false } as never };

function routed(body: unknown) {
  return toRouterRequest(chatGenerationInput(parseChatRequest(body)), ctx).sampling!;
}

describe("response_format", () => {
  it("maps json_object to the any-object schema", () => {
    expect(routed({ ...base, response_format: { type: "json_object" } }).jsonSchema).toBe("{}");
  });

  it("maps json_schema to the schema's JSON text", () => {
    const schema = { type: "object", properties: { color: { enum: ["red", "green"] } }, required: ["color"] };
    expect(JSON.parse(routed({ ...base, response_format: { type: "json_schema", json_schema: { name: "c", schema } } }).jsonSchema)).toEqual(schema);
  });

  it("leaves text and a missing response_format unconstrained", () => {
    expect(routed({ ...base, response_format: { type: "text" } }).jsonSchema).toBe("");
    expect(routed(base).jsonSchema).toBe("");
  });

  it("rejects a schema with an invalid type, naming response_format", () => {
    let caught: unknown;
    try {
      parseChatRequest({ ...base, response_format: { type: "json_schema", json_schema: { name: "c", schema: { type: ["object", 5] } } } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConnectError);
    expect(errorDetails(caught as ConnectError).param).toBe("response_format");
  });
});
