import { Template } from "@huggingface/jinja";
import { describe, expect, it } from "vitest";
import { PROMPT_FORMATS, promptFormat } from "./index.js";

const SPECIALS = { bos_token: "<s>", eos_token: "</s>" };

/** The seed's example conversation (pplx-api's quick-start), continued by one more turn. */
const CONVERSATION = [
  { role: "system", content: "Be precise and concise." },
  { role: "user", content: "How many stars are there in our galaxy?" },
  { role: "assistant", content: "About 100 to 400 billion." },
  { role: "user", content: "And in Andromeda?" },
];

function render(name: string, messages: object[]): string {
  return new Template(promptFormat(name)!.template).render({ messages, add_generation_prompt: true, ...SPECIALS });
}

describe("prompt formats", () => {
  it("renders Mistral instruct as docs.mistral.ai publishes it", () => {
    expect(render("mistral-instruct", CONVERSATION)).toBe(
      "<s>[INST] Be precise and concise.\n\nHow many stars are there in our galaxy? [/INST] About 100 to 400 billion.</s>[INST] And in Andromeda? [/INST]",
    );
    expect(render("mistral-instruct", CONVERSATION.slice(1, 2))).toBe("<s>[INST] How many stars are there in our galaxy? [/INST]");
  });

  it("renders Llama 2 chat with <<SYS>> as Meta's chat_completion builds it", () => {
    expect(render("llama-2-chat", CONVERSATION)).toBe(
      "<s>[INST] <<SYS>>\nBe precise and concise.\n<</SYS>>\n\nHow many stars are there in our galaxy? [/INST] About 100 to 400 billion. </s>" +
        "<s>[INST] And in Andromeda? [/INST]",
    );
    expect(render("llama-2-chat", [{ role: "user", content: "  Hi  " }])).toBe("<s>[INST] Hi [/INST]");
  });

  it("renders Code Llama instruct as Meta's codellama chat_completion builds it", () => {
    expect(
      render("codellama-instruct", [
        { role: "system", content: "Answer in Python." },
        { role: "user", content: "Reverse a list." },
      ]),
    ).toBe("<s>[INST] <<SYS>>\nAnswer in Python.\n<</SYS>>\n\nReverse a list. [/INST]");
    expect(render("codellama-instruct", CONVERSATION)).toBe(render("llama-2-chat", CONVERSATION));
  });

  it("refuses chat for completion-only models (replit-code)", () => {
    expect(promptFormat("completion-only")!.completionOnly).toBe(true);
    expect(() => render("completion-only", CONVERSATION)).toThrow(/completion-only/);
  });

  it("refuses conversations whose roles do not alternate", () => {
    for (const name of ["mistral-instruct", "llama-2-chat", "codellama-instruct"]) {
      expect(() =>
        render(name, [
          { role: "user", content: "a" },
          { role: "user", content: "b" },
        ]),
      ).toThrow(/alternate/);
    }
  });

  it("names every format it ships", () => {
    expect([...PROMPT_FORMATS.keys()].sort()).toEqual(["codellama-instruct", "completion-only", "llama-2-chat", "mistral-instruct"]);
  });
});
