/**
 * Finds where a JSON value that starts at `start` ends (the index after
 * its last character), by bracket and string scanning; -1 when the text
 * ends first. Scalars end at the first `,`, `;`, `}`, `]` or whitespace.
 */
export function jsonValueEnd(text: string, start: number): number {
  const first = text[start];
  if (first !== "{" && first !== "[") {
    if (first === '"') return stringEnd(text, start);
    const match = /^[^\s,;}\]]+/.exec(text.slice(start));
    return match ? start + match[0].length : -1;
  }
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

/** JSON.parse, or undefined when the text is not JSON. */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
