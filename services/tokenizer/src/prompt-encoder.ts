import { Code, meshError } from "../../../lib/errors.js";
import type { ModelTokenizer, TemplateMessage } from "./model-tokenizer.js";
import type { ToolFunction } from "../../../lib/tool-calls/index.js";

/**
 * Longest run of text handed to the native tokenizer at once. llama.cpp's
 * SentencePiece session is quadratic on long runs without merges (64k
 * Chinese characters took 1.3 s, 4k took 6 ms), so long runs are cut into
 * pieces of at most this many UTF-16 units, at a whitespace where one is near.
 */
export const MAX_RUN_CHARS = 2_048;
/** How far back from a cut a whitespace is looked for. */
const CUT_LOOKBACK_CHARS = 256;

/** A conversation tokenized for the engine. */
export interface EncodedPrompt {
  tokenIds: number[];
  contextLength: number;
}

/**
 * Refuses a prompt whose byte length alone proves it cannot fit the context,
 * before any template or tokenizer work is spent on it.
 */
export function checkPromptBytes(tokenizer: ModelTokenizer, bytes: number, param: string): void {
  const minTokens = Math.ceil(bytes / Math.max(1, tokenizer.maxBytesPerToken));
  if (minTokens > tokenizer.contextLength) {
    throw meshError(
      Code.InvalidArgument,
      `This model's maximum context length is ${tokenizer.contextLength} tokens. However, your prompt is ${bytes} bytes, which is at least ${minTokens} tokens. Please reduce the length of the prompt.`,
      { reason: "context_length_exceeded", param },
    );
  }
}

/** UTF-8 byte length of every message's content together. */
export function contentBytes(messages: readonly TemplateMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += Buffer.byteLength(m.content);
  return bytes;
}

/**
 * Renders a conversation with the model's template and tokenizes it so that
 * only the template's own text may become control tokens: message content is
 * tokenized with special-token parsing off ("</s>" typed by a user stays
 * text). Fragments are cut as llama.cpp cuts them (raw text between control
 * tokens, each tokenized on its own), so a benign conversation gets exactly
 * the ids `tokenize(rendered, true)` would give.
 */
export function encodeChat(
  tokenizer: ModelTokenizer,
  messages: readonly TemplateMessage[],
  addGenerationPrompt: boolean,
  tools?: readonly ToolFunction[],
): EncodedPrompt {
  checkPromptBytes(tokenizer, contentBytes(messages), "messages");
  refuseControlTokensInTools(tokenizer.specialTokens, messages, tools ?? []);
  const rendered = tokenizer.renderChat(messages, addGenerationPrompt, tools);
  const untrusted = contentRanges(rendered, messages, tokenizer.specialTokens);
  const ids: number[] = [];
  let run = "";
  let cursor = 0;
  for (const [start, end] of untrusted) {
    run = appendTrusted(tokenizer, rendered.slice(cursor, start), run, ids);
    run += rendered.slice(start, end);
    cursor = end;
  }
  run = appendTrusted(tokenizer, rendered.slice(cursor), run, ids);
  encodeRun(tokenizer, run, ids);
  return { tokenIds: ids, contextLength: tokenizer.contextLength };
}

/** Tokenizes a raw completion prompt: specials off, with the model's own prefix (BOS). */
export function encodeCompletion(tokenizer: ModelTokenizer, text: string): EncodedPrompt {
  checkPromptBytes(tokenizer, Buffer.byteLength(text), "prompt");
  const ids = [...tokenizer.completionPrefix];
  encodeRun(tokenizer, text, ids);
  return { tokenIds: ids, contextLength: tokenizer.contextLength };
}

/**
 * Tool definitions and the tool calls of the history are rendered as
 * template text (their JSON is not a message's content), so control-token
 * text in them would parse as control tokens: it is refused instead,
 * naming `tools` or `messages`.
 */
function refuseControlTokensInTools(specials: ReadonlyMap<string, number>, messages: readonly TemplateMessage[], tools: readonly ToolFunction[]): void {
  const refuse = (text: string, param: string): void => {
    const special = firstSpecial(specials, text);
    if (special)
      throw meshError(Code.InvalidArgument, `${param} contains the control token ${JSON.stringify(special.text)}; remove it`, {
        reason: "invalid_content",
        param,
      });
  };
  for (const tool of tools) refuse(`${tool.name}\n${tool.description ?? ""}\n${tool.parametersJson}`, "tools");
  for (const m of messages) {
    for (const call of m.toolCalls ?? []) refuse(`${call.id}\n${call.name}\n${call.arguments}`, "messages");
    if (m.toolCallId) refuse(m.toolCallId, "messages");
  }
}

/**
 * Where each message's content sits in the rendered prompt, found in order
 * (verbatim, else trimmed, as templates such as Llama 3's trim it). Content
 * a template transformed beyond that cannot be located; it is refused if it
 * holds control-token text, since it could not be kept from parsing.
 */
function contentRanges(rendered: string, messages: readonly TemplateMessage[], specials: ReadonlyMap<string, number>): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let from = 0;
  for (const { content } of messages) {
    if (!content) continue;
    let text = content;
    let at = rendered.indexOf(text, from);
    if (at < 0) {
      text = content.trim();
      at = text ? rendered.indexOf(text, from) : -1;
    }
    if (at < 0) {
      const special = firstSpecial(specials, content);
      if (special) {
        throw meshError(
          Code.InvalidArgument,
          `message content contains the control token ${JSON.stringify(special.text)}, which this model's chat template transforms; remove it`,
          {
            reason: "invalid_content",
            param: "messages",
          },
        );
      }
      continue;
    }
    ranges.push([at, at + text.length]);
    from = at + text.length;
  }
  return ranges;
}

/**
 * Adds template text to the current raw run, cutting the run at each control
 * token the template wrote: the run so far is tokenized, the token's id
 * appended. Returns the raw run still open.
 */
function appendTrusted(tokenizer: ModelTokenizer, text: string, run: string, ids: number[]): string {
  if (!text) return run;
  let rest = text;
  for (;;) {
    const next = firstSpecial(tokenizer.specialTokens, rest);
    if (!next) return run + rest;
    run += rest.slice(0, next.at);
    encodeRun(tokenizer, run, ids);
    run = "";
    ids.push(next.id);
    rest = rest.slice(next.at + next.text.length);
  }
}

/** The earliest (then longest) control token in text. */
function firstSpecial(specials: ReadonlyMap<string, number>, text: string): { at: number; text: string; id: number } | undefined {
  let best: { at: number; text: string; id: number } | undefined;
  for (const [special, id] of specials) {
    const at = text.indexOf(special);
    if (at < 0) continue;
    if (!best || at < best.at || (at === best.at && special.length > best.text.length)) best = { at, text: special, id };
  }
  return best;
}

/** Tokenizes one raw run (no control tokens parsed), in pieces of at most MAX_RUN_CHARS. */
function encodeRun(tokenizer: ModelTokenizer, run: string, ids: number[]): void {
  let start = 0;
  while (start < run.length) {
    const end = cutPoint(run, start);
    const piece = tokenizer.encodeText(run.slice(start, end), start > 0);
    for (const id of piece) ids.push(id);
    start = end;
  }
}

/** Where the piece starting at `start` ends: before a whitespace near the limit, never inside a surrogate pair. */
function cutPoint(text: string, start: number): number {
  const limit = start + MAX_RUN_CHARS;
  if (limit >= text.length) return text.length;
  for (let i = limit; i > limit - CUT_LOOKBACK_CHARS; i--) {
    if (isSpace(text.charCodeAt(i))) return i;
  }
  const code = text.charCodeAt(limit);
  return code >= 0xdc00 && code <= 0xdfff ? limit - 1 : limit;
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x09 || code === 0x0d;
}
