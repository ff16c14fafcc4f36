export { FAKE_ARGUMENT_FRAGMENTS, fakeTokenLogprob, fakeEmbedding, startFakeOpenAI } from "./fake-openai.js";
export type { FakeOpenAI, FakeOpenAIBehavior, FakeOpenAIOptions, FakeOpenAIStats, FakeRequestBody } from "./fake-openai.js";
