/**
 * The OpenAI-compatible request shapes the engine and the gateway accept, and OpenAI-style error
 * bodies (`{"error": {"message", "type", "code", "param"}}`). Unknown fields are allowed (clients
 * send temperature, top_p, ...): only what we use is checked.
 */
import { z } from "zod";

const positiveInt = z.int().positive();

const common = {
  model: z.string().min(1, "model must be a non-empty string"),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: positiveInt.nullish(),
  ignore_eos: z.boolean().optional(),
  min_tokens: z.int().nonnegative().optional(),
  n: z.literal(1, "only n=1 is supported").optional(),
  /** Extension: the prompt length in tokens, for load generators that replay traces. */
  prompt_tokens: positiveInt.optional(),
};

const tokenIds = z.array(z.int().nonnegative()).min(1);

export const completionsSchema = z.looseObject({
  ...common,
  prompt: z.union(
    [z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)],
    "prompt must be a string, an array of strings or token ids",
  ),
});

const message = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(z.unknown()), z.null()]).optional(),
});

export const chatSchema = z.looseObject({
  ...common,
  messages: z.array(message).min(1, "messages must hold at least one message"),
  max_completion_tokens: positiveInt.nullish(),
});

export type CompletionsBody = z.infer<typeof completionsSchema>;
export type ChatBody = z.infer<typeof chatSchema>;
export type RequestKind = "completions" | "chat";

export interface OpenAiError {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly code: string | number | null;
    readonly param: string | null;
  };
}

export function errorBody(
  message: string,
  type: string,
  code: string | number | null,
  param: string | null = null,
): OpenAiError {
  return { error: { message, type, code, param } };
}

const isPositiveInt = (value: unknown): boolean =>
  typeof value === "number" && Number.isSafeInteger(value) && value > 0;
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * The common request shapes, recognized by hand: zod costs as much per request as the rest of the
 * gateway's validation and routing together. True only for bodies the schema surely accepts (the
 * schema passes them through unchanged: no defaults, no transforms); anything else, every invalid
 * body included, goes through zod, which words the error.
 */
export function surelyValid(kind: RequestKind, body: Record<string, unknown>): boolean {
  const { model, stream, max_tokens, prompt_tokens, ignore_eos } = body;
  if (typeof model !== "string" || model.length === 0) return false;
  if (stream !== undefined && typeof stream !== "boolean") return false;
  if (max_tokens !== undefined && max_tokens !== null && !isPositiveInt(max_tokens)) return false;
  if (prompt_tokens !== undefined && !isPositiveInt(prompt_tokens)) return false;
  if (ignore_eos !== undefined && typeof ignore_eos !== "boolean") return false;
  // Rarely sent: left to the schema.
  if (body.stream_options !== undefined || body.min_tokens !== undefined || body.n !== undefined)
    return false;
  if (kind === "completions") return typeof body.prompt === "string";
  const { messages, max_completion_tokens } = body;
  if (
    max_completion_tokens !== undefined &&
    max_completion_tokens !== null &&
    !isPositiveInt(max_completion_tokens)
  )
    return false;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (const message of messages as unknown[]) {
    if (!isPlainObject(message)) return false;
    const { role, content } = message;
    if (typeof role !== "string" || role.length === 0) return false;
    if (content !== undefined && content !== null && typeof content !== "string" && !Array.isArray(content))
      return false;
  }
  return true;
}

/** Validates a parsed JSON body; a message naming the first bad field on failure. */
export function validateBody(
  kind: RequestKind,
  body: unknown,
): { ok: true; body: CompletionsBody | ChatBody } | { ok: false; message: string; param: string | null } {
  if (!isPlainObject(body))
    return { ok: false, message: "the request body must be a JSON object", param: null };
  if (surelyValid(kind, body)) return { ok: true, body: body as CompletionsBody | ChatBody };
  const result = (kind === "chat" ? chatSchema : completionsSchema).safeParse(body);
  if (result.success) return { ok: true, body: result.data };
  const issue = result.error.issues[0]!;
  const param = issue.path.map(String).join(".");
  let value: unknown = body;
  for (const key of issue.path)
    value =
      value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  const missing = issue.path.length > 0 && value === undefined && issue.code !== "unrecognized_keys";
  const message = missing
    ? `missing required field "${param}"`
    : `${param === "" ? "body" : param}: ${issue.message}`;
  return { ok: false, message, param: param === "" ? null : param };
}
