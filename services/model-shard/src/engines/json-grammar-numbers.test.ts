import { describe, expect, it } from "vitest";
import { exactNumbers } from "./llama-json-grammar.js";

describe("exactNumbers", () => {
  it("takes the exponent off integers and bounds fraction exponents to two digits", () => {
    const gbnf = [
      "root ::= integer-number-rule fractional-number-rule",
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
    ].join("\n");
    const lines = exactNumbers(gbnf).split("\n");
    expect(lines[1]).toBe('integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,14})');
    expect(lines[2]).toBe('fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]{0,1}))?');
    expect(exactNumbers('root ::= "x"')).toBe('root ::= "x"');
  });
});
