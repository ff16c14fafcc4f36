import { parseToolCalls, startsAsCall, TOOL_CALL_MARKERS } from "./parsers.js";
import type { ToolParserName } from "./parsers.js";

/** A streamed piece of a tool call (proto `ToolCallDelta`): the first of a call has its id and name. */
export interface ToolCallPiece {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/** What one step of the stream gives out. */
export interface ToolStreamOutput {
  content: string;
  toolCalls: ToolCallPiece[];
}

/** How a generation's text is read: forced calls (grammar JSON) or the model's own syntax. */
export type ToolStreamMode = { kind: "forced" } | { kind: "auto"; parser: ToolParserName };

/** Characters of output after which a marker-less syntax is decided (`[{`, "```"). */
const DECIDE_AFTER_CHARS = 3;

/**
 * Turns a generation's text deltas into content and tool-call pieces.
 * Forced mode reads the grammar's `{"name", "arguments"}` JSON (or an
 * array of them) as it streams: a call's id and name as soon as the name
 * is complete, then its arguments text fragment by fragment, so the
 * fragments concatenate to the arguments JSON. Auto mode streams content
 * up to the parser's marker (holding back a possible marker prefix), keeps
 * what follows, and at the end parses it: calls if it parses, else content.
 */
export class ToolCallStream {
  readonly #mode: ToolStreamMode;
  readonly #newId: () => string;
  readonly #scanner: ForcedCallScanner | undefined;
  #text = "";
  #streamed = 0;
  #capturing = false;
  #calls = 0;

  constructor(mode: ToolStreamMode, newId: () => string) {
    this.#mode = mode;
    this.#newId = newId;
    if (mode.kind === "forced") this.#scanner = new ForcedCallScanner(newId);
  }

  /** Tool calls given out so far. */
  get calls(): number {
    return this.#scanner ? this.#scanner.calls : this.#calls;
  }

  push(text: string): ToolStreamOutput {
    if (this.#scanner) return { content: "", toolCalls: this.#scanner.feed(text) };
    this.#text += text;
    if (this.#capturing) return { content: "", toolCalls: [] };
    const { parser } = this.#mode as { parser: ToolParserName };
    const head = this.#text.trimStart();
    if (this.#streamed === 0 && head.length < DECIDE_AFTER_CHARS) return { content: "", toolCalls: [] };
    if (this.#streamed === 0 && startsAsCall(parser, this.#text)) {
      this.#capturing = true;
      return { content: "", toolCalls: [] };
    }
    const markers = TOOL_CALL_MARKERS[parser];
    const rest = this.#text.slice(this.#streamed);
    const found = markers.map((m) => rest.indexOf(m)).filter((i) => i >= 0);
    let upTo: number;
    if (found.length > 0) {
      upTo = this.#streamed + Math.min(...found);
      this.#capturing = true;
    } else {
      upTo = this.#text.length - heldBack(rest, markers);
    }
    const content = this.#text.slice(this.#streamed, upTo);
    this.#streamed = upTo;
    return { content, toolCalls: [] };
  }

  /** The end of the generation: what is left, parsed. */
  finish(): ToolStreamOutput {
    if (this.#scanner) return { content: "", toolCalls: this.#scanner.flush() };
    const parsed = parseToolCalls((this.#mode as { parser: ToolParserName }).parser, this.#text);
    if (parsed.calls.length === 0) return { content: this.#text.slice(this.#streamed), toolCalls: [] };
    const sent = this.#text.slice(0, this.#streamed).trim();
    const content = parsed.content.startsWith(sent) ? parsed.content.slice(sent.length) : "";
    const toolCalls = parsed.calls.flatMap((call, index) => [
      { index, id: this.#newId(), name: call.name, arguments: "" },
      { index, id: "", name: "", arguments: call.arguments },
    ]);
    this.#calls = parsed.calls.length;
    return { content: this.#streamed === 0 ? content.trim() : content, toolCalls };
  }
}

/** Length of the longest end of `text` that begins one of `markers`. */
function heldBack(text: string, markers: readonly string[]): number {
  let held = 0;
  for (const marker of markers) {
    for (let n = Math.min(marker.length - 1, text.length); n > held; n--) {
      if (text.endsWith(marker.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}

/**
 * An incremental reader of `{"name": "...", "arguments": {...}}` (or an
 * array of them), character by character: strings, nesting depth, the
 * current key of the call object, and the raw text of its arguments.
 */
class ForcedCallScanner {
  readonly #newId: () => string;
  #depth = 0;
  #callDepth = 0;
  #inString = false;
  #escape = false;
  #stringText = "";
  #expectKey = false;
  #key = "";
  #awaiting = "";
  #capturingArgs = false;
  #argsDepth = 0;
  #argsPending = "";
  #named = false;
  calls = 0;

  constructor(newId: () => string) {
    this.#newId = newId;
  }

  feed(text: string): ToolCallPiece[] {
    const out: ToolCallPiece[] = [];
    for (const ch of text) this.#char(ch, out);
    this.#emitArgs(out);
    return out;
  }

  flush(): ToolCallPiece[] {
    const out: ToolCallPiece[] = [];
    this.#emitArgs(out);
    return out;
  }

  #char(ch: string, out: ToolCallPiece[]): void {
    if (this.#capturingArgs) this.#argsPending += ch;
    if (this.#inString) {
      if (this.#escape) this.#escape = false;
      else if (ch === "\\") this.#escape = true;
      else if (ch === '"') {
        this.#inString = false;
        this.#stringEnded(out);
        return;
      }
      this.#stringText += ch;
      return;
    }
    if (/\s/.test(ch)) return;
    if (this.#callDepth === 0) this.#callDepth = ch === "[" ? 2 : 1;
    const atCall = this.#depth === this.#callDepth;
    if (atCall && this.#awaiting && !this.#capturingArgs && (this.#awaiting === "arguments" || this.#awaiting === "parameters")) {
      this.#capturingArgs = true;
      this.#argsDepth = this.#depth;
      this.#argsPending += ch;
    }
    if (ch === '"') {
      this.#inString = true;
      this.#stringText = "";
      return;
    }
    if (ch === "{" || ch === "[") {
      this.#depth++;
      if (this.#depth === this.#callDepth && ch === "{") this.#startCall();
      return;
    }
    if (ch === "}" || ch === "]") {
      this.#depth--;
      if (this.#capturingArgs && this.#depth === this.#argsDepth) this.#endArgs(out);
      return;
    }
    if (atCall && ch === ":") this.#awaiting = this.#key;
    if (atCall && ch === ",") {
      if (this.#capturingArgs) {
        this.#argsPending = this.#argsPending.slice(0, -1);
        this.#endArgs(out);
      }
      this.#expectKey = true;
      this.#awaiting = "";
    }
  }

  #startCall(): void {
    this.#expectKey = true;
    this.#awaiting = "";
    this.#named = false;
  }

  #stringEnded(out: ToolCallPiece[]): void {
    if (this.#depth !== this.#callDepth) return;
    const value = unescape(this.#stringText);
    if (this.#expectKey && !this.#awaiting) {
      this.#key = value;
      this.#expectKey = false;
    } else if (this.#awaiting === "name") {
      this.#named = true;
      out.push({ index: this.calls, id: this.#newId(), name: value, arguments: "" });
      this.calls++;
      this.#awaiting = "";
    } else if (this.#capturingArgs) {
      this.#endArgs(out);
    }
  }

  #endArgs(out: ToolCallPiece[]): void {
    this.#emitArgs(out);
    this.#capturingArgs = false;
    this.#awaiting = "";
  }

  #emitArgs(out: ToolCallPiece[]): void {
    if (!this.#named || !this.#argsPending) return;
    out.push({ index: this.calls - 1, id: "", name: "", arguments: this.#argsPending });
    this.#argsPending = "";
  }
}

function unescape(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}
