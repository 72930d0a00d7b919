/**
 * Load and bookkeeping for the end-to-end tests: an open-loop burst of OpenAI requests (half
 * streamed), each answer classified as complete, a clear refusal (429/503 with Retry-After and a
 * JSON error), or something else (a failure of the test).
 */
import assert from "node:assert/strict";
import { request } from "undici";
import type { ServeHandle } from "../../src/live/serve.ts";
import { sseEvents } from "./helpers.ts";

export interface Classified {
  readonly kind: "complete" | "refused" | "other";
  readonly status: number;
  readonly requestId: string | undefined;
  readonly worker: string | undefined;
  readonly detail: string;
}

/** Sends one completion and classifies the answer; never throws. */
export async function sendAndClassify(
  url: string,
  index: number,
  maxTokens: number,
  promptChars = 2000,
): Promise<Classified> {
  const stream = index % 2 === 0;
  const chat = index % 3 === 0;
  const body = chat
    ? {
        model: "llama2-70b",
        messages: [{ role: "user", content: "x".repeat(promptChars) }],
        max_tokens: maxTokens,
        stream,
      }
    : { model: "llama2-70b", prompt: "x".repeat(promptChars), max_tokens: maxTokens, stream };
  try {
    const response = await request(`${url}${chat ? "/v1/chat/completions" : "/v1/completions"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    const requestId = response.headers["x-request-id"] as string | undefined;
    const worker = response.headers["x-splitscale-worker"] as string | undefined;
    const status = response.statusCode;
    if (status === 429 || status === 503) {
      const error = (JSON.parse(text) as { error?: { message?: string } }).error;
      const retryAfter = Number(response.headers["retry-after"]);
      const clear = error?.message !== undefined && retryAfter >= 1;
      return {
        kind: clear ? "refused" : "other",
        status,
        requestId,
        worker,
        detail: `${status} ${error?.message ?? text}`,
      };
    }
    if (status !== 200)
      return { kind: "other", status, requestId, worker, detail: `${status} ${text.slice(0, 300)}` };
    if (stream) {
      const events = sseEvents(text);
      const tokens = events.filter((e) => e !== "[DONE]" && !e.startsWith('{"error"')).length;
      const ok = events.at(-1) === "[DONE]" && tokens === maxTokens;
      return {
        kind: ok ? "complete" : "other",
        status,
        requestId,
        worker,
        detail: `stream of ${tokens} tokens, last ${events.at(-1)?.slice(0, 200)}`,
      };
    }
    const parsed = JSON.parse(text) as {
      usage?: { completion_tokens?: number };
      choices?: { text?: string; message?: { content?: string } }[];
    };
    const content = parsed.choices?.[0]?.text ?? parsed.choices?.[0]?.message?.content ?? "";
    const ok =
      parsed.usage?.completion_tokens === maxTokens && content.trim().split(/\s+/).length === maxTokens;
    return {
      kind: ok ? "complete" : "other",
      status,
      requestId,
      worker,
      detail: `json with ${parsed.usage?.completion_tokens} tokens`,
    };
  } catch (error) {
    return {
      kind: "other",
      status: 0,
      requestId: undefined,
      worker: undefined,
      detail: `client error: ${(error as Error).message}`,
    };
  }
}

/** Open loop: `count` requests at `ratePerS`, not waiting for answers. */
export async function burst(
  url: string,
  count: number,
  ratePerS: number,
  maxTokens: number,
): Promise<Classified[]> {
  const pending: Promise<Classified>[] = [];
  const start = Date.now();
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / ratePerS;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(sendAndClassify(url, i, maxTokens));
  }
  return Promise.all(pending);
}

/** Every request answered exactly once, completely or with a clear refusal; the gateway's books agree. */
export function assertAccounted(
  handle: ServeHandle,
  results: readonly Classified[],
  sentBefore = 0,
): { complete: number; refused: number } {
  const others = results.filter((r) => r.kind === "other");
  assert.deepEqual(
    others,
    [],
    `every answer complete or a clear 429/503:\n${others.map((o) => o.detail).join("\n")}`,
  );
  const ids = results.map((r) => r.requestId);
  assert.ok(
    ids.every((id) => id !== undefined),
    "every answer carries its request id",
  );
  assert.equal(new Set(ids).size, results.length, "no request answered twice");
  const complete = results.filter((r) => r.kind === "complete").length;
  const refused = results.length - complete;
  const stats = handle.gateway.stats;
  assert.equal(stats.received, sentBefore + results.length, "the gateway saw every request");
  assert.equal(stats.inFlight, 0, "nothing left in flight");
  return { complete, refused };
}

/** Workers that served requests, over the whole run (deleted ones included). */
export function servedByWorkers(handle: ServeHandle): number {
  return handle.registry.all(true).reduce((sum, worker) => sum + worker.served, 0);
}
