/**
 * How the emulated engine (and the gateway, for its traffic counters) decides a request's prompt and
 * output lengths, since it has no tokenizer and no model to hit an end-of-sequence token:
 *
 * - prompt tokens: an explicit `prompt_tokens` field in the body (an extension for load generators
 *   replaying traces) wins; a prompt given as token ids counts them exactly; text counts
 *   ceil(characters / 4) (OpenAI's rule of thumb for English), at least 1. Chat messages add 4 tokens
 *   of framing per message plus 3 for the reply's priming, as OpenAI's cookbook counts them.
 * - output tokens: `max_tokens` (or `max_completion_tokens` for chat), else the engine's default.
 *   The emulator never stops early, so every request behaves as if `ignore_eos: true` were set
 *   (the field is accepted either way), and `min_tokens` cannot shorten it.
 */

export const CHARS_PER_TOKEN = 4;
const TOKENS_PER_MESSAGE = 4;
const REPLY_PRIMING_TOKENS = 3;

export function tokensOfText(text: string): number {
  return Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN));
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "number");
}

/** Prompt tokens of a completions `prompt` (string, string[], token ids or a batch of token ids). */
export function promptTokensOf(prompt: unknown): number {
  if (typeof prompt === "string") return tokensOfText(prompt);
  if (isTokenArray(prompt)) return prompt.length;
  if (Array.isArray(prompt)) {
    let total = 0;
    for (const item of prompt) total += promptTokensOf(item);
    return Math.max(1, total);
  }
  return 1;
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        part !== null && typeof part === "object" && typeof (part as { text?: unknown }).text === "string"
          ? (part as { text: string }).text
          : "",
      )
      .join(" ");
  }
  return "";
}

/** Prompt tokens of a chat `messages` array. */
export function chatPromptTokensOf(messages: readonly unknown[]): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    const content =
      message !== null && typeof message === "object"
        ? (message as { content?: unknown }).content
        : undefined;
    total += TOKENS_PER_MESSAGE + Math.ceil(contentText(content).length / CHARS_PER_TOKEN);
  }
  return total;
}

export interface LengthHints {
  readonly prompt_tokens?: number | undefined;
  readonly max_tokens?: number | null | undefined;
  readonly max_completion_tokens?: number | null | undefined;
}

/** Prompt and output lengths of a completions or chat request body (already validated). */
export function requestLengths(
  kind: "completions" | "chat",
  body: LengthHints & { prompt?: unknown; messages?: readonly unknown[] },
  defaultMaxTokens: number,
): { prompt: number; output: number } {
  const prompt =
    body.prompt_tokens ??
    (kind === "chat" ? chatPromptTokensOf(body.messages ?? []) : promptTokensOf(body.prompt));
  const output = body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens;
  return { prompt: Math.max(1, Math.round(prompt)), output: Math.max(1, Math.round(output)) };
}
