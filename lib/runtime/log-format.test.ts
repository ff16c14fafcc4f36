import { describe, expect, it } from "vitest";
import { logFormatFrom, prettyLogLine } from "./log-format.js";

describe("log format", () => {
  it("is pretty on a terminal and JSON when piped, unless LOG_FORMAT says otherwise", () => {
    expect(logFormatFrom({}, true)).toBe("pretty");
    expect(logFormatFrom({}, false)).toBe("json");
    expect(logFormatFrom({ LOG_FORMAT: "json" }, true)).toBe("json");
    expect(logFormatFrom({ LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(() => logFormatFrom({ LOG_FORMAT: "xml" }, false)).toThrow(/LOG_FORMAT must be json or pretty/);
  });

  it("turns a pino line into time, level, service, message and key fields", () => {
    const line = JSON.stringify({
      level: 30,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      pid: 1,
      hostname: "h",
      service: "edge",
      name: "edge",
      port: 8080,
      msg: "listening",
    });
    expect(prettyLogLine(line, "edge")).toBe("03:04:05.678 INFO  edge    listening port=8080");
  });

  it("shows an access line as method, path, status and duration, then the request's fields", () => {
    const line = JSON.stringify({
      level: 30,
      time: 0,
      service: "edge",
      msg: "request",
      access: true,
      method: "POST",
      path: "/v1/chat/completions",
      status: 200,
      ms: 15.2,
      requestId: "abc",
      model: "tiny-llama",
      backend: "local",
      promptTokens: 12,
      completionTokens: 5,
      ttftMs: 3.1,
      traceId: "0af7651916cd43dd8448eb211c80319c",
    });
    expect(prettyLogLine(line, "x")).toBe(
      "00:00:00.000 INFO  edge    request POST /v1/chat/completions 200 15.2ms requestId=abc model=tiny-llama backend=local promptTokens=12 completionTokens=5 ttftMs=3.1 traceId=0af7651916cd43dd8448eb211c80319c",
    );
  });

  it("prints errors by type and message, quotes values with spaces, and passes other lines through", () => {
    const line = JSON.stringify({
      level: 50,
      time: 0,
      msg: "request failed",
      err: { type: "ConnectError", message: "no replica", stack: "at x" },
      note: "two words",
    });
    expect(prettyLogLine(line, "router")).toBe('00:00:00.000 ERROR router  request failed err="ConnectError: no replica" note="two words"');
    expect(prettyLogLine("    at Object.<anonymous> (file.js:1:1)", "auth")).toMatch(/ auth +at Object\.<anonymous>/);
  });

  it("colours the level only when asked (a terminal)", () => {
    const line = JSON.stringify({ level: 40, time: 0, msg: "slow" });
    expect(prettyLogLine(line, "edge", true)).toContain("\x1b[33mWARN \x1b[0m");
    expect(prettyLogLine(line, "edge")).not.toContain("\x1b[");
  });
});
