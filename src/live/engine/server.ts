/**
 * `splitscale engine`: an emulated OpenAI-compatible LLM engine for tests and demos without GPUs.
 *
 * Endpoints: POST /v1/completions and /v1/chat/completions (JSON or SSE streaming, with usage),
 * GET /v1/models, GET /health (503 while the model "loads", 200 after), GET /metrics (Prometheus
 * text with vLLM's metric names). Token timing comes from `EmulatedEngine`: the simulator's Instance
 * and performance model on wall time. Prompt and output lengths: see lengths.ts.
 */
import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { PerformanceModelSpec } from "../../model/factory.ts";
import type { BatchingConfig } from "../../serving/instance.ts";
import { baseUrlOf, createHttpApp, readBody, sendJson, sendRefusal, serveFirst } from "../http.ts";
import { silentLogger, type Logger } from "../log.ts";
import { errorBody, validateBody, type ChatBody, type CompletionsBody, type RequestKind } from "../openai.ts";
import { ExpositionWriter, PROMETHEUS_CONTENT_TYPE } from "../prometheus/exposition.ts";
import { EmulatedEngine } from "./emulator.ts";
import { resolveHardware, type PerfModelChoice } from "./hardware.ts";
import { requestLengths } from "./lengths.ts";

export interface EngineOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** Catalog model whose performance is emulated (catalog/models.yaml). */
  readonly model: string;
  /** The name clients use in `model` and /v1/models lists (default: `model`). */
  readonly servedModelName?: string;
  readonly gpu: string;
  readonly tp: number;
  readonly perfModel: PerfModelChoice | PerformanceModelSpec;
  readonly batching: BatchingConfig;
  /** Emulated seconds per wall second (10 = a GPU ten times faster). */
  readonly timeScale: number;
  /** Seconds /health answers 503 before the engine serves (model loading). */
  readonly loadDelay_s: number;
  /** Largest prompt + output per request; default: what the KV cache holds. */
  readonly maxModelLen?: number;
  /** Output tokens when a request gives no max_tokens. */
  readonly defaultMaxTokens: number;
  readonly bodyLimitBytes: number;
  readonly log?: Logger;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  host: "127.0.0.1",
  port: 8000,
  model: "llama2-70b",
  gpu: "h100",
  tp: 8,
  perfModel: "auto",
  batching: { kind: "splitwise", maxBatchSize: 512, maxBatchTokens: 2048, maxPreemptions: 4 },
  timeScale: 1,
  loadDelay_s: 0,
  defaultMaxTokens: 256,
  bodyLimitBytes: 4 * 1024 * 1024,
};

export interface EngineServer {
  readonly url: string;
  readonly engine: EmulatedEngine;
  readonly servedModelName: string;
  readonly maxModelLen: number;
  isReady(): boolean;
  close(): Promise<void>;
}

const WORDS = [
  "the",
  "quick",
  "brown",
  "fox",
  "jumps",
  "over",
  "a",
  "lazy",
  "dog",
  "and",
  "then",
  "runs",
  "far",
  "away",
  "into",
  "woods",
];

const ROUTES: ReadonlyMap<string, RequestKind> = new Map([
  ["/v1/completions", "completions"],
  ["/v1/chat/completions", "chat"],
]);

function tokenText(index: number): string {
  return ` ${WORDS[(index * 7) % WORDS.length]!}`;
}

export async function startEngineServer(options: EngineOptions): Promise<EngineServer> {
  const log = options.log ?? silentLogger;
  const hardware = resolveHardware({
    model: options.model,
    gpu: options.gpu,
    tp: options.tp,
    perfModel: options.perfModel,
  });
  const engine = new EmulatedEngine({ hardware, batching: options.batching, timeScale: options.timeScale });
  const served = options.servedModelName ?? options.model;
  const maxModelLen = Math.min(options.maxModelLen ?? Infinity, engine.maxTotalTokens);
  const idPrefix = randomBytes(4).toString("hex");
  let nextId = 0;
  let ready = options.loadDelay_s <= 0;
  let closing = false;
  const startedAt = Math.floor(Date.now() / 1000);
  const loadTimer = ready
    ? undefined
    : setTimeout(() => {
        ready = true;
        log.info(`model ${served} loaded (emulated ${options.loadDelay_s} s); serving`);
      }, options.loadDelay_s * 1000);

  const app = createHttpApp({ bodyLimit: options.bodyLimitBytes, log });

  app.get("/health", async (_request, reply) => {
    if (closing) return reply.code(503).send({ status: "shutting_down" });
    if (!ready) return reply.code(503).send({ status: "loading" });
    return reply.code(200).send({ status: "ok" });
  });

  app.get("/v1/models", () =>
    Promise.resolve({
      object: "list",
      data: [
        {
          id: served,
          object: "model",
          created: startedAt,
          owned_by: "splitscale",
          root: options.model,
          max_model_len: maxModelLen,
        },
      ],
    }),
  );

  app.get("/metrics", async (_request, reply) => {
    const labels = { model_name: served };
    const cacheConfig = { block_size: "16", num_gpu_blocks: String(Math.floor(hardware.maxKvTokens / 16)) };
    const page = new ExpositionWriter()
      .gauge("vllm:num_requests_running", "Number of requests in model execution batches.", [
        { labels, value: engine.running },
      ])
      .gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", [
        { labels, value: engine.waiting },
      ])
      .gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", [
        { labels, value: engine.kvCacheUsage },
      ])
      .counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", [
        { labels, value: engine.promptTokens },
      ])
      .counter("vllm:generation_tokens_total", "Number of generation tokens processed.", [
        { labels, value: engine.generationTokens },
      ])
      .counter("vllm:request_success_total", "Count of successfully processed requests.", [
        { labels: { ...labels, finished_reason: "length" }, value: engine.requestsCompleted },
      ])
      .counter("vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.", [
        { labels, value: engine.preemptions },
      ])
      .histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        labels,
        snapshot(engine.ttft),
      )
      .histogram(
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        labels,
        snapshot(engine.itl),
      )
      .histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of end to end request latency in seconds.",
        labels,
        snapshot(engine.e2e),
      )
      .gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", [
        { labels: cacheConfig, value: 1 },
      ])
      .gauge("splitscale:gpu_utilization_perc", "Emulated GPU busy time over the last 5 s, percent.", [
        { labels, value: engine.utilizationPercent() },
      ])
      .counter("splitscale:gpu_busy_seconds_total", "Emulated GPU busy seconds (wall).", [
        { labels, value: engine.busySeconds() },
      ])
      .gauge("splitscale:pending_prefill_tokens", "Prompt tokens queued or in prefill.", [
        { labels, value: engine.pendingPrefillTokens },
      ])
      .gauge("splitscale:engine_info", "The emulated engine's configuration.", [
        {
          labels: {
            model: options.model,
            gpu: hardware.processor,
            tp: String(options.tp),
            perf_model: hardware.perfModel,
            time_scale: String(options.timeScale),
          },
          value: 1,
        },
      ]);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(page.toString());
  });

  /** A validated completion: JSON when it is done, or SSE token by token. */
  const complete = (kind: RequestKind, body: CompletionsBody | ChatBody, response: ServerResponse): void => {
    if (body.model !== served)
      return sendJson(
        response,
        404,
        errorBody(
          `The model \`${body.model}\` does not exist (this engine serves ${served}).`,
          "invalid_request_error",
          "model_not_found",
          "model",
        ),
      );
    const lengths = requestLengths(kind, body, options.defaultMaxTokens);
    if (lengths.prompt + lengths.output > maxModelLen)
      return sendJson(
        response,
        400,
        errorBody(
          `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${lengths.prompt + lengths.output} tokens ` +
            `(${lengths.prompt} in the prompt, ${lengths.output} in the completion).`,
          "invalid_request_error",
          "context_length_exceeded",
          "max_tokens",
        ),
      );
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${idPrefix}${(nextId++).toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: lengths.prompt,
      completion_tokens: lengths.output,
      total_tokens: lengths.prompt + lengths.output,
    };

    if (body.stream === true) {
      response.writeHead(200, [
        "content-type",
        "text/event-stream",
        "cache-control",
        "no-cache",
        "connection",
        "keep-alive",
      ]);
      let open = true;
      response.once("close", () => {
        open = false;
      });
      const includeUsage = body.stream_options?.include_usage === true;
      const chunk = streamChunks(kind, id, created, served);
      engine.submit(lengths.prompt, lengths.output, {
        onToken(index) {
          if (!open) return;
          response.write(`data: ${chunk(index, tokenText(index), index === lengths.output)}\n\n`);
        },
        onDone() {
          if (!open) return;
          if (includeUsage)
            response.write(
              `data: ${JSON.stringify({ id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model: served, choices: [], usage })}\n\n`,
            );
          response.end("data: [DONE]\n\n");
        },
        onAbort(reason) {
          if (!open) return;
          response.end(`data: ${JSON.stringify(errorBody(reason, "server_error", "aborted"))}\n\n`);
        },
      });
      return;
    }

    let content = "";
    engine.submit(lengths.prompt, lengths.output, {
      onToken(index) {
        content += tokenText(index);
      },
      onDone() {
        sendJson(
          response,
          200,
          kind === "chat"
            ? {
                id,
                object: "chat.completion",
                created,
                model: served,
                choices: [
                  {
                    index: 0,
                    message: { role: "assistant", content },
                    logprobs: null,
                    finish_reason: "length",
                  },
                ],
                usage,
              }
            : {
                id,
                object: "text_completion",
                created,
                model: served,
                choices: [{ index: 0, text: content, logprobs: null, finish_reason: "length" }],
                usage,
              },
        );
      },
      onAbort(reason) {
        sendJson(response, 503, errorBody(reason, "server_error", "aborted"));
      },
    });
  };

  // The completion routes are served by hand ahead of fastify (they are the engine's hot path: a
  // benchmark's "direct" path and every proxied request), with fastify's refusals and wording.
  const limits = serveFirst(app, (request, response) => {
    if (request.method !== "POST") return false;
    const url = request.url ?? "";
    const query = url.indexOf("?");
    const kind = ROUTES.get(query < 0 ? url : url.slice(0, query));
    if (kind === undefined) return false;
    readBody(request, limits.bodyLimit, (refused, parsed) => {
      if (refused !== undefined) return sendRefusal(response, refused);
      if (closing)
        return sendJson(response, 503, errorBody("engine is shutting down", "server_error", "shutting_down"));
      if (!ready)
        return sendJson(response, 503, errorBody("model is still loading", "server_error", "loading"));
      const validated = validateBody(kind, parsed);
      if (!validated.ok)
        return sendJson(
          response,
          400,
          errorBody(validated.message, "invalid_request_error", "invalid_request", validated.param),
        );
      complete(kind, validated.body, response);
    });
    return true;
  });

  await app.listen({ host: options.host, port: options.port });
  const url = baseUrlOf(app);
  log.info(
    `emulating ${options.model} on ${options.tp} x ${hardware.processor} (${hardware.perfModel} model, KV ${hardware.maxKvTokens} tokens, time scale ${options.timeScale}) at ${url}`,
  );
  return {
    url,
    engine,
    servedModelName: served,
    maxModelLen,
    isReady: () => ready && !closing,
    async close() {
      closing = true;
      if (loadTimer !== undefined) clearTimeout(loadTimer);
      engine.close();
      await app.close();
    },
  };
}

/**
 * The JSON of a stream's token chunks, as JSON.stringify writes the OpenAI chunk objects, with the
 * parts that never change within a request built once (stringifying a chunk object per token was
 * most of the engine's cost per streamed token). `index` is 1-based; `last` gives finish "length".
 */
export function streamChunks(
  kind: RequestKind,
  id: string,
  created: number,
  model: string,
): (index: number, text: string, last: boolean) => string {
  const head =
    `{"id":${JSON.stringify(id)},"object":"${kind === "chat" ? "chat.completion.chunk" : "text_completion"}",` +
    `"created":${created},"model":${JSON.stringify(model)},"choices":[{"index":0,`;
  const ends = ['"logprobs":null,"finish_reason":null}]}', '"logprobs":null,"finish_reason":"length"}]}'];
  if (kind === "chat")
    return (index, text, last) =>
      `${head}"delta":{${index === 1 ? '"role":"assistant",' : ""}"content":${JSON.stringify(text)}},${ends[last ? 1 : 0]!}`;
  return (_index, text, last) => `${head}"text":${JSON.stringify(text)},${ends[last ? 1 : 0]!}`;
}

function snapshot(histogram: { le: readonly number[]; cumulative(): number[]; count: number; sum: number }) {
  return { le: histogram.le, cumulative: histogram.cumulative(), count: histogram.count, sum: histogram.sum };
}
