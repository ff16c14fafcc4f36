import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { RenderChatResponseSchema, TokenizeResponseSchema } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import type { RenderChatRequest, TokenizeRequest, TokenizerService as TokenizerServiceDesc } from "../../../src/gen/mesh/tokenizer/v1/tokenizer_pb.js";
import { Code, meshError } from "../../../lib/errors.js";
import type { ModelTokenizer } from "./model-tokenizer.js";
import { encodeChat } from "./prompt-encoder.js";

/** Chat templates and tokenization per model name. */
export class TokenizerService implements ServiceImpl<typeof TokenizerServiceDesc> {
  constructor(private readonly tokenizers: ReadonlyMap<string, ModelTokenizer>) {}

  #get(model: string): ModelTokenizer {
    const tokenizer = this.tokenizers.get(model);
    if (!tokenizer) throw meshError(Code.NotFound, `model "${model}" has no tokenizer`);
    return tokenizer;
  }

  renderChat(req: RenderChatRequest) {
    const tokenizer = this.#get(req.model);
    if (req.messages.length === 0) throw meshError(Code.InvalidArgument, "messages must not be empty");
    return create(RenderChatResponseSchema, encodeChat(tokenizer, req.messages, req.addGenerationPrompt, req.tools));
  }

  tokenize(req: TokenizeRequest) {
    const tokenizer = this.#get(req.model);
    return create(TokenizeResponseSchema, {
      tokenIds: tokenizer.tokenize(req.text, req.specialTokens),
      contextLength: tokenizer.contextLength,
    });
  }
}
