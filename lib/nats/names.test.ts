import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromSubjectToken, meshNatsNames, subjectToken } from "./names.js";

describe("NATS names", () => {
  it("encodes any string as one subject token that is a valid KV key segment, and decodes it back", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (s) => {
        const token = subjectToken(s);
        expect(token).toMatch(/^[A-Za-z0-9_=-]+$/);
        expect(fromSubjectToken(token)).toBe(s);
      }),
    );
  });

  it("keeps ordinary ids readable and tells dotted ids apart", () => {
    expect(subjectToken("default")).toBe("default");
    expect(subjectToken("acme.prod")).toBe("acme=2Eprod");
    expect(subjectToken("a=b")).not.toBe(subjectToken("a.b"));
    const names = meshNatsNames();
    expect(names.usageSubject("acme.prod", "req-1")).toBe("mesh.events.v1.usage.acme=2Eprod.req-1");
    expect(names.accountUsageSubjects("acme")).toBe("mesh.events.v1.usage.acme.*");
  });

  it("refuses a prefix that would break stream or bucket names", () => {
    expect(() => meshNatsNames("Mesh.Prod")).toThrow(RangeError);
  });
});
